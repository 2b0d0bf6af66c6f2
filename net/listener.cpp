// Listener (see listener.hpp for the descriptor-exhaustion policy).
#include "tendril/net/listener.hpp"

#include "tendril/core/log.hpp"
#include "tendril/sched/scheduler.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

namespace tendril {

namespace {

std::mutex g_spare_mutex;
int g_spare_fd = -1;
std::atomic<std::uint64_t> g_shed{0};
std::atomic<bool> g_exhausted{false};

void take_spare() {
    if (g_spare_fd < 0) g_spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
}

enum class Shed { dropped, none_pending, failed };

// Accept and drop one pending connection with the spare descriptor. Linux
// reports EMFILE before it looks at the queue, so there may be none pending.
Shed shed_one(int listen_fd) {
    std::lock_guard<std::mutex> lock(g_spare_mutex);
    if (g_spare_fd < 0) return Shed::failed;
    ::close(g_spare_fd);
    g_spare_fd = -1;
    int fd = ::accept(listen_fd, nullptr, nullptr);
    int e = errno;
    if (fd >= 0) {
        ::close(fd);
        g_shed.fetch_add(1, std::memory_order_relaxed);
    }
    take_spare();
    if (fd >= 0) return Shed::dropped;
    return e == EAGAIN || e == EWOULDBLOCK ? Shed::none_pending : Shed::failed;
}

}  // namespace

std::uint64_t Listener::shed_count() { return g_shed.load(); }

Result<int> Listener::open_socket(const SocketAddress& at, const ListenOptions& options) {
    Result<int> r;
    r.value = -1;
    auto fail = [&](int fd) {
        r.status = Status::error;
        r.error = errno;
        if (fd >= 0) ::close(fd);
        return r;
    };
    int fd = ::socket(at.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(-1);
    int one = 1;
    if (options.reuse_address && at.is_ip()) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (options.reuse_port && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) return fail(fd);
    if (at.is_ip()) ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::bind(fd, at.get(), at.length()) != 0) return fail(fd);
    if (::listen(fd, options.backlog) != 0) return fail(fd);
    r.value = fd;
    return r;
}

Listener Listener::adopt(int fd) {
    {
        std::lock_guard<std::mutex> lock(g_spare_mutex);
        take_spare();
    }
    return Listener(PollFd(fd));
}

Result<Listener> Listener::listen(const SocketAddress& at, const ListenOptions& options) {
    Result<Listener> r;
    Result<int> fd = open_socket(at, options);
    if (!fd) {
        r.status = fd.status;
        r.error = fd.error;
        return r;
    }
    r.value = adopt(fd.value);
    return r;
}

Result<Socket> Listener::accept(Deadline deadline, SocketAddress* peer) {
    Result<Socket> r;
    auto backoff = std::chrono::milliseconds(5);
    for (;;) {
        SocketAddress a;
        Status why;
        int fd = static_cast<int>(fd_.until_ready(
            PollFd::Direction::read,
            [&] {
                *a.length_ptr() = SocketAddress::capacity();
                return ::accept4(fd_.fd(), a.get(), a.length_ptr(), SOCK_NONBLOCK | SOCK_CLOEXEC);
            },
            deadline, &why));
        if (fd >= 0) {
            if (g_exhausted.exchange(false))
                TENDRIL_LOG(LogLevel::warning, "descriptors available again: accepting connections "
                            "(%llu shed meanwhile)", static_cast<unsigned long long>(g_shed.load()));
            if (peer) *peer = a;
            Socket s(PollFd(fd, PollFd::NonBlockingSocket{}));
            if (a.is_ip() && nodelay_ != NoDelay::inherited) {
                if (nodelay_ == NoDelay::unknown) {
                    int v = 0;
                    socklen_t len = sizeof v;
                    ::getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len);
                    nodelay_ = v ? NoDelay::inherited : NoDelay::per_socket;
                }
                if (nodelay_ == NoDelay::per_socket) s.set_nodelay(true);
            }
            r.value = std::move(s);
            return r;
        }
        if (why != Status::error) {  // the wait ended: deadline, cancelled, closed
            r.status = why;
            return r;
        }
        int e = errno;
        switch (e) {
        case ECONNABORTED:
        case EPROTO:
            continue;
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM: {
            if (!g_exhausted.exchange(true))
                TENDRIL_LOG(LogLevel::warning, "accept: %s: shedding new connections until "
                            "descriptors free up", std::strerror(e));
            Shed shed = shed_one(fd_.fd());
            if (shed == Shed::dropped) continue;
            if (shed == Shed::none_pending) {  // the next connection's edge will tell
                fd_.consumed_read();
                continue;
            }
            Status st = sleep_for(backoff);
            if (st != Status::ok) {
                r.status = st;
                return r;
            }
            backoff = std::min<decltype(backoff)>(backoff * 2, std::chrono::seconds(1));
            continue;
        }
        default:
            r.status = Status::error;
            r.error = e;
            return r;
        }
    }
}

bool Listener::pending() {
    if (!fd_.is_open()) return false;
    pollfd p{fd_.fd(), POLLIN, 0};
    int n;
    do n = ::poll(&p, 1, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0 && (p.revents & POLLIN)) return true;
    // Drained: the next connection raises a new edge, which the poller
    // handles only after this fiber parks, so it cannot be missed.
    fd_.consumed_read();
    return false;
}

SocketAddress Listener::local_address() const {
    SocketAddress a;
    *a.length_ptr() = SocketAddress::capacity();
    if (::getsockname(fd_.fd(), a.get(), a.length_ptr()) != 0) return {};
    return a;
}

}  // namespace tendril
