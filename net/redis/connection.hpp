// Connection: one connection to a Redis server, for fibers.
//
//   auto c = redis::Connection::open("127.0.0.1", 6379, Deadline::after(1s));
//   auto r = c->execute(redis::Commands{"SET", "k", "v"}.add({"GET", "k"}), Deadline::after(1s));
//   // r->at(1).str == "v"
//
// Every call takes a Deadline. A call that fails on the transport (timeout,
// cancellation, reset, EOF, a protocol error) closes the connection: replies
// may be on their way that nobody would match to their commands any more, so
// the next caller must start over on a new one (Client does that). One fiber
// reads at a time and one writes at a time; Client serialises its callers,
// Subscriber has a reader of its own. A Connection belongs to the scheduler
// (thread) that opened it.
#pragma once

#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/net/redis/protocol.hpp"
#include "tendril/net/redis/reply.hpp"
#include "tendril/net/socket.hpp"

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tendril::redis {

class Connection {
public:
    Connection() = default;
    Connection(Connection&&) noexcept = default;
    Connection& operator=(Connection&&) noexcept = default;

    // Resolve host (off the loop if it is a name) and connect to the first
    // address that answers. On failure, status/error say why and the
    // returned Connection's last_error() says it in words.
    static Result<Connection> open(std::string_view host, std::uint16_t port, Deadline deadline = {});
    // The first of these addresses that answers (what a name resolved to).
    static Result<Connection> open(const std::vector<SocketAddress>& addresses, std::string name, Deadline deadline = {});

    // Write the commands (all of them, one write when they fit the socket).
    [[nodiscard]] Status send(const Commands& commands, Deadline deadline = {});
    // The next reply, in the order the commands were sent.
    Result<Reply> read_reply(Deadline deadline = {});
    // The same, for a reader that waits with nothing outstanding (a
    // subscriber waiting for its next message): a timeout leaves the
    // connection open, and a reply that had only partly arrived is finished
    // by the next call.
    Result<Reply> wait_reply(Deadline deadline);
    // send() then read one reply per command.
    Result<std::vector<Reply>> execute(const Commands& commands, Deadline deadline = {});
    // One command, one reply.
    Result<Reply> command(std::initializer_list<std::string_view> args, Deadline deadline = {});

    bool is_open() const { return sock_.is_open(); }
    // True when the server has closed its end (seen by the poller while the
    // connection was idle): a command sent now would be lost.
    bool hung_up() const { return sock_.is_open() && sock_.hung_up(); }
    void close();
    // Why the last failed call failed ("redis 127.0.0.1:6379: reading a
    // reply: Connection reset by peer"); empty after a good one.
    const std::string& last_error() const { return error_; }
    const std::string& name() const { return name_; }  // "host:port"
    Socket& socket() { return sock_; }

private:
    Status fail(Status st, int sys_errno, std::string_view doing);
    Result<Reply> next_reply(Deadline deadline, bool close_on_timeout);

    Socket sock_;
    std::unique_ptr<ReplyReader> reader_ = std::make_unique<ReplyReader>();
    std::unique_ptr<char[]> buf_;  // read buffer, allocated on open
    std::string name_;
    std::string error_;
};

}  // namespace tendril::redis
