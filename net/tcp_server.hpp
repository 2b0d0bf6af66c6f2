// TcpServer: the port of the seed's ScheduledMixIn -- an accept fiber and a
// fiber per connection running the user's function.
//
//   TcpServer server(std::move(listener), [](Socket& s, const SocketAddress& peer) {
//       ... talk to the client; the socket is closed when this returns ...
//   });
//   server.serve_forever();            // until shutdown()
//
// shutdown(grace) stops accepting at once, lets connections finish until the
// grace deadline, then cancels the rest (their blocking calls return
// Status::cancelled) and waits for them to unwind.
//
// With a connection limit (TcpServerOptions::max_connections, or a
// ConnectionLimit shared with other servers) the accept loop pauses at the
// limit -- new clients wait in the listen backlog -- and resumes when a
// connection closes. It takes a slot only once a client is waiting, so an
// idle loop holds none that the servers of other threads could use.
#pragma once

#include "tendril/core/intrusive_list.hpp"
#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/net/address.hpp"
#include "tendril/net/connection_limit.hpp"
#include "tendril/net/listener.hpp"
#include "tendril/net/socket.hpp"
#include "tendril/sched/event.hpp"
#include "tendril/sched/fiber.hpp"

#include <functional>
#include <memory>

namespace tendril {

struct TcpServerOptions {
    std::size_t stack_size = 0;  // connection fibers; 0: the scheduler's default
    std::string_view name = "conn";
    // At most this many connections open at once; 0: no limit.
    std::size_t max_connections = 0;
    // Or a limit shared with other servers (those of the other threads: a
    // per-process limit); it wins over max_connections.
    std::shared_ptr<ConnectionLimit> connection_limit = nullptr;
};

class TcpServer {
public:
    using Handler = std::function<void(Socket&, const SocketAddress& peer)>;
    TcpServer(Listener listener, Handler handler, TcpServerOptions options = {});

    // One open connection. `data` is the handler's: a layer above keeps its
    // per-connection state there, so that one list tracks the connections
    // (BaseHTTPServer finds its idle keep-alive handlers through it).
    struct Connection {
        ListHook<Connection> hook;
        FiberHandle fiber;
        void* data = nullptr;
    };
    using ConnectionHandler = std::function<void(Socket&, const SocketAddress& peer, Connection&)>;
    TcpServer(Listener listener, ConnectionHandler handler, TcpServerOptions options = {});
    ~TcpServer();
    TcpServer(const TcpServer&) = delete;
    TcpServer& operator=(const TcpServer&) = delete;

    // Accept until shutdown(), then wait for the connections to end.
    void serve_forever();
    // From another fiber: stop accepting, wait for connections until `grace`,
    // cancel the rest, and return once they are gone.
    void shutdown(Deadline grace = Deadline::after(std::chrono::seconds(5)));

    // Per-connection hook run in the connection's fiber before the handler;
    // return false to close the connection at once.
    std::function<bool(Socket&, const SocketAddress&)> on_connect;

    std::size_t connections() const { return conns_.size(); }
    // f(Connection&) for every open connection (the list's own iteration,
    // which survives the current connection leaving it).
    template <class F>
    void for_each_connection(F&& f) {
        for (Connection* c : conns_) f(*c);
    }
    std::uint64_t accepted() const { return accepted_; }
    // Before serve_forever(): the limit its accept loop keeps to (nullptr:
    // none). Servers of several threads may share one.
    void set_connection_limit(std::shared_ptr<ConnectionLimit> limit) { limit_ = std::move(limit); }
    const std::shared_ptr<ConnectionLimit>& connection_limit() const { return limit_; }
    SocketAddress local_address() const { return address_; }
    bool stopping() const { return stopping_; }

private:
    using Connections = IntrusiveList<Connection, &Connection::hook>;
    void run_connection(Connection* c, Socket sock, SocketAddress peer);
    Result<Socket> accept_within_limit(SocketAddress* peer);

    Listener listener_;
    ConnectionHandler handler_;
    TcpServerOptions options_;
    SocketAddress address_;
    Connections conns_;
    std::uint64_t accepted_ = 0;
    bool stopping_ = false;
    bool serving_ = false;
    Event drained_;  // set whenever the last connection ends while stopping
    Event stopped_;  // set when serve_forever() is done
    std::shared_ptr<ConnectionLimit> limit_;
    Event room_;  // wakes the accept loop paused at the limit (a slot freed, or shutdown)
};

}  // namespace tendril
