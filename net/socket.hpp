// Socket: a connected TCP (IPv4/IPv6) or Unix stream socket for fibers.
//
// Every call that can block takes a Deadline and returns an IoResult whose
// status tells a timeout, a cancellation, a closed socket and an error apart.
// TCP_NODELAY is on by default (request/response protocols want it); writes
// never raise SIGPIPE.
#pragma once

#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/net/address.hpp"
#include "tendril/net/poll_fd.hpp"
#include "tendril/net/tls_session.hpp"

#include <sys/uio.h>

#include <memory>
#include <string>
#include <string_view>

namespace tendril {

struct ConnectOptions {
    bool nodelay = true;
    // Bind to this local address first (a load generator spreading its
    // connections over 127.0.0.x to avoid running out of ports).
    SocketAddress source{};
    // Linux 6.3+: the local port range for this socket (IP_LOCAL_PORT_RANGE);
    // lets many sockets share source ports across destinations. 0 = default.
    std::uint16_t port_range_lo = 0, port_range_hi = 0;
};

class Socket {
public:
    Socket() = default;
    explicit Socket(PollFd fd) : fd_(std::move(fd)) {}
    // Adopt a connected descriptor (it is made non-blocking).
    static Socket adopt(int fd) { return Socket(PollFd(fd)); }

    // Non-blocking connect, park until writable, then check SO_ERROR.
    static Result<Socket> connect(const SocketAddress& to, Deadline deadline = {},
                                  const ConnectOptions& options = {});
    // A connected pair of Unix sockets (tests, in-process plumbing).
    static std::pair<Socket, Socket> pair();

    // --- TLS -----------------------------------------------------------------------
    // Run the TLS handshake on this connected socket (the context says
    // which side we are); from then on every read and write below goes
    // through TLS. server_name: the client's SNI and the name the server's
    // certificate must carry. On failure *why (if given) says why.
    [[nodiscard]] Status start_tls(std::shared_ptr<TlsContext> context, Deadline deadline = {},
                                   std::string_view server_name = {}, std::string* why = nullptr);
    bool is_tls() const { return tls_ != nullptr; }
    TlsSession* tls() { return tls_.get(); }

    IoResult read_some(void* buf, std::size_t n, Deadline deadline = {}) {
        if (tls_) [[unlikely]] return tls_->read(fd_, buf, n, deadline);
        return fd_.read(buf, n, deadline);
    }
    IoResult write_some(const void* buf, std::size_t n, Deadline deadline = {}) {
        if (tls_) [[unlikely]] return tls_->write_some(fd_, buf, n, deadline);
        return fd_.write(buf, n, deadline);
    }
    // All n bytes, or eof/timeout/... with n = what arrived.
    IoResult read_exact(void* buf, std::size_t n, Deadline deadline = {});
    IoResult write_all(const void* buf, std::size_t n, Deadline deadline = {}) {
        if (tls_) [[unlikely]] return tls_->write_all(fd_, buf, n, deadline);
        return fd_.write_all(buf, n, deadline);
    }
    IoResult write_all(std::string_view s, Deadline deadline = {}) { return write_all(s.data(), s.size(), deadline); }
    // Gathered write of everything (iov is modified).
    IoResult writev(iovec* iov, int count, Deadline deadline = {}) {
        if (tls_) [[unlikely]] return tls_->writev_all(fd_, iov, count, deadline);
        return fd_.writev_all(iov, count, deadline);
    }
    // count bytes of file_fd from offset, by sendfile(2): no user buffer
    // (with TLS: by kTLS where the kernel has it, else through a buffer).
    IoResult sendfile(int file_fd, off_t offset, std::size_t count, Deadline deadline = {});

    // With TLS, a close_notify first (within a short deadline).
    Status shutdown_write();
    void close() {
        tls_.reset();
        fd_.close();
    }
    bool is_open() const { return fd_.is_open(); }
    explicit operator bool() const { return is_open(); }

    bool set_nodelay(bool on);
    bool set_keepalive(bool on);
    bool set_buffer_sizes(int send_bytes, int recv_bytes);
    SocketAddress peer_address() const;
    SocketAddress local_address() const;

    // Until a read would not block: at once when TLS holds decrypted or
    // read-ahead bytes that the descriptor no longer announces.
    [[nodiscard]] Status wait_readable(Deadline deadline = {}) {
        if (tls_ && tls_->has_pending()) return Status::ok;
        return fd_.wait_readable(deadline);
    }

    // Waiting for the peer to go away while doing something else: a case for
    // select() (e.g. a comet waiter parked on a channel), or a plain wait.
    FdCase on_hangup() { return fd_.on_hangup(); }
    // The descriptor's readability; with TLS, check tls()->has_pending() first.
    FdCase on_readable() { return fd_.on_readable(); }
    FdCase on_writable() { return fd_.on_writable(); }
    [[nodiscard]] Status wait_hangup(Deadline deadline = {}) { return fd_.wait_hangup(deadline); }
    bool hung_up() const { return fd_.hung_up(); }

    PollFd& fd() { return fd_; }
    int native() const { return fd_.fd(); }

private:
    PollFd fd_;
    std::unique_ptr<TlsSession> tls_;  // after fd_: destroyed before it
};

}  // namespace tendril
