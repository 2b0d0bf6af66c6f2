// Listener: a listening socket whose accept() parks the fiber.
//
// Running out of descriptors (EMFILE/ENFILE) must not take a server down or
// make it spin: the pending connection could never be accepted, the
// listening socket stays readable, and a naive loop burns a core. We keep one
// spare descriptor; when accept fails for lack of descriptors, the spare is
// closed, the pending connection is accepted and closed at once (the client
// sees a prompt close instead of a hang), and the spare is taken again
// (libuv and libev do the same). If that does not help, accept backs off
// (5 ms doubling to 1 s). The first failure of an episode is logged, and so
// is the recovery.
#pragma once

#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/net/address.hpp"
#include "tendril/net/poll_fd.hpp"
#include "tendril/net/socket.hpp"

namespace tendril {

struct ListenOptions {
    int backlog = 4096;
    bool reuse_address = true;
    bool reuse_port = false;  // several listeners (threads, processes) on one port
};

class Listener {
public:
    Listener() = default;
    static Result<Listener> listen(const SocketAddress& at, const ListenOptions& options = {});
    // listen()'s two halves, for a socket bound on one thread and served on
    // another (run_threads(): thread 0 binds every thread's socket, so that
    // port 0 and bind errors are settled before any thread serves).
    // open_socket(): bound and listening, non-blocking, watched by nobody;
    // reuse_port fails with the errno where SO_REUSEPORT is not supported.
    // adopt(): take fd over, watched by this thread's scheduler.
    static Result<int> open_socket(const SocketAddress& at, const ListenOptions& options = {});
    static Listener adopt(int fd);

    // The next connection; timeout, cancelled or closed (another fiber closed
    // the listener: the way to stop an accept loop).
    Result<Socket> accept(Deadline deadline = {}, SocketAddress* peer = nullptr);

    // Whether a connection is waiting to be accepted, without accepting it;
    // when none is, the next wait for readability parks until one arrives
    // (the ready flag stays up after an accept that emptied the queue, and
    // only a failed accept would otherwise clear it). One poll(2).
    bool pending();

    SocketAddress local_address() const;
    void close() { fd_.close(); }
    bool is_open() const { return fd_.is_open(); }
    PollFd& fd() { return fd_; }

    // Connections shed for lack of descriptors, in this process.
    static std::uint64_t shed_count();

private:
    explicit Listener(PollFd fd) : fd_(std::move(fd)) {}
    PollFd fd_;
    // Accepted TCP sockets get TCP_NODELAY. Linux copies it from the
    // listener; the first accept checks whether this kernel does, so later
    // ones can skip the setsockopt (one syscall per connection).
    enum class NoDelay : std::uint8_t { unknown, inherited, per_socket } nodelay_ = NoDelay::unknown;
};

}  // namespace tendril
