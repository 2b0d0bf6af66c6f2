// Socket (see socket.hpp).
#include "tendril/net/socket.hpp"

#include "tendril/sched/detail/poll_desc.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif
#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace tendril {

namespace {
int new_socket(int family) {
#ifdef SOCK_NONBLOCK
    return ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
    int fd = ::socket(family, SOCK_STREAM, 0);
    if (fd >= 0) {
        ::fcntl(fd, F_SETFL, O_NONBLOCK);
        ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    }
    return fd;
#endif
}
}  // namespace

Result<Socket> Socket::connect(const SocketAddress& to, Deadline deadline, const ConnectOptions& options) {
    Result<Socket> r;
    int fd = new_socket(to.family());
    if (fd < 0) {
        r.status = Status::error;
        r.error = errno;
        return r;
    }
#ifdef SO_NOSIGPIPE
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    if (options.port_range_lo || options.port_range_hi) {
        std::uint32_t range = options.port_range_lo | (std::uint32_t(options.port_range_hi) << 16);
        ::setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof range);
    }
    if (options.source.valid()) {
        // Defer the port choice to connect(), where the 4-tuple is known.
        int on = 1;
        ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
        if (::bind(fd, options.source.get(), options.source.length()) != 0) {
            r.status = Status::error;
            r.error = errno;
            ::close(fd);
            return r;
        }
    }
#ifdef SOCK_NONBLOCK
    Socket s(PollFd(fd, PollFd::NonBlockingSocket{}));
#else
    Socket s = Socket::adopt(fd);
#endif
    if (to.is_ip() && options.nodelay) s.set_nodelay(true);
    int rc;
    do rc = ::connect(fd, to.get(), to.length());
    while (rc != 0 && errno == EINTR);
    if (rc != 0 && errno != EINPROGRESS) {
        r.status = Status::error;
        r.error = errno;
        return r;
    }
    if (rc != 0) {
        s.fd_.consumed_write();
        Status st = s.fd_.wait_writable(deadline);
        if (st != Status::ok) {
            r.status = st;
            return r;
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        // libkqueue reads SO_ERROR itself when it reports the failure, so
        // a refused connection can show err == 0 there: ask for the peer.
        sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        if (err == 0 && ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) != 0)
            err = errno == ENOTCONN ? ECONNREFUSED : errno;
        if (err != 0) {
            r.status = Status::error;
            r.error = err;
            return r;
        }
    }
    r.value = std::move(s);
    return r;
}

std::pair<Socket, Socket> Socket::pair() {
    int sv[2];
#ifdef SOCK_NONBLOCK
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) return {};
#else
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return {};
#endif
    return {Socket::adopt(sv[0]), Socket::adopt(sv[1])};
}

Status Socket::start_tls(std::shared_ptr<TlsContext> context, Deadline deadline, std::string_view server_name,
                         std::string* why) {
    if (!fd_.is_open()) {
        if (why) *why = "tls: the socket is closed";
        return Status::closed;
    }
    auto session = std::make_unique<TlsSession>(std::move(context), fd_.fd());
    Status st = session->handshake(fd_, server_name, deadline);
    if (st != Status::ok) {
        if (why) *why = session->last_error().empty() ? "tls: handshake: " + describe(st, 0) : session->last_error();
        return st;
    }
    tls_ = std::move(session);
    return Status::ok;
}

IoResult Socket::read_exact(void* buf, std::size_t n, Deadline deadline) {
    char* p = static_cast<char*>(buf);
    std::size_t got = 0;
    while (got < n) {
        IoResult r = read_some(p + got, n - got, deadline);
        if (!r) return {got, r.status, r.error};
        got += r.n;
    }
    return {got, Status::ok, 0};
}

IoResult Socket::sendfile(int file_fd, off_t offset, std::size_t count, Deadline deadline) {
    if (tls_) return tls_->sendfile(fd_, file_fd, offset, count, deadline);
    std::size_t sent = 0;
    while (sent < count) {
        Status why;
        ssize_t r = fd_.until_ready(
            PollFd::Direction::write,
            [&] { return sys_sendfile(fd_.fd(), file_fd, offset + static_cast<off_t>(sent), count - sent); },
            deadline, &why);
        if (r > 0) {
            sent += static_cast<std::size_t>(r);
            continue;
        }
        if (r == 0) return {sent, Status::eof, 0};  // the file is shorter than promised
        if (why != Status::error) return {sent, why, 0};
        int e = errno;
        if (e == EPIPE || e == ECONNRESET) return {sent, Status::closed, e};
        return {sent, Status::error, e};
    }
    return {sent, Status::ok, 0};
}

Status Socket::shutdown_write() {
    if (tls_) (void)tls_->shutdown(fd_, Deadline::after(std::chrono::milliseconds(200)));
    return ::shutdown(fd_.fd(), SHUT_WR) == 0 ? Status::ok : Status::error;
}

bool Socket::set_nodelay(bool on) {
    int v = on;
    return ::setsockopt(fd_.fd(), IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) == 0;
}

bool Socket::set_keepalive(bool on) {
    int v = on;
    return ::setsockopt(fd_.fd(), SOL_SOCKET, SO_KEEPALIVE, &v, sizeof v) == 0;
}

bool Socket::set_buffer_sizes(int send_bytes, int recv_bytes) {
    bool ok = true;
    if (send_bytes > 0) ok &= ::setsockopt(fd_.fd(), SOL_SOCKET, SO_SNDBUF, &send_bytes, sizeof send_bytes) == 0;
    if (recv_bytes > 0) ok &= ::setsockopt(fd_.fd(), SOL_SOCKET, SO_RCVBUF, &recv_bytes, sizeof recv_bytes) == 0;
    return ok;
}

SocketAddress Socket::peer_address() const {
    SocketAddress a;
    *a.length_ptr() = SocketAddress::capacity();
    if (::getpeername(fd_.fd(), a.get(), a.length_ptr()) != 0) return {};
    return a;
}

SocketAddress Socket::local_address() const {
    SocketAddress a;
    *a.length_ptr() = SocketAddress::capacity();
    if (::getsockname(fd_.fd(), a.get(), a.length_ptr()) != 0) return {};
    return a;
}

}  // namespace tendril
