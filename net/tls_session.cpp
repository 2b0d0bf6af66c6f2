// TlsSession (see tls_session.hpp).
#include "tendril/net/tls_session.hpp"

#include "tendril/net/uncancellable_io.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <vector>

namespace tendril {

namespace {

// OpenSSL's I/O through the PollFd's readiness flags (the BIO's data is the
// PollFd of the call under way): where the descriptor is known to be drained
// the BIO says "retry" without a syscall, and a short read or write marks it
// drained, exactly as PollFd's own calls do -- so a request on an HTTPS
// keep-alive connection costs one read(2) and one write(2), as over TCP,
// instead of two reads (record header, then body) and an EAGAIN.
int bio_read(BIO* b, char* buf, int len) {
    auto* fd = static_cast<PollFd*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (!fd || !fd->is_open()) {
        errno = EBADF;
        return -1;
    }
    if (!fd->maybe_ready(PollFd::Direction::read)) {
        BIO_set_retry_read(b);
        return -1;
    }
    for (;;) {
        ssize_t r = uncancellable::read(fd->fd(), buf, static_cast<std::size_t>(len));
        if (r > 0) {
            // Not after a hang-up: the EOF behind the data is never announced again.
            if (r < len && !fd->hung_up()) fd->consumed_read();
            return static_cast<int>(r);
        }
        if (r == 0) {
            // OpenSSL applies SSL_OP_IGNORE_UNEXPECTED_EOF only when BIO_eof() says so.
            BIO_set_flags(b, BIO_FLAGS_IN_EOF);
            return 0;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            fd->consumed_read();
            BIO_set_retry_read(b);
        }
        return -1;
    }
}

int bio_write(BIO* b, const char* buf, int len) {
    auto* fd = static_cast<PollFd*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (!fd || !fd->is_open()) {
        errno = EBADF;
        return -1;
    }
    if (!fd->maybe_ready(PollFd::Direction::write)) {
        BIO_set_retry_write(b);
        return -1;
    }
    for (;;) {
        ssize_t r = uncancellable::send(fd->fd(), buf, static_cast<std::size_t>(len), MSG_NOSIGNAL);
        if (r >= 0) {
            if (r < len) fd->consumed_write();
            return static_cast<int>(r);
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            fd->consumed_write();
            BIO_set_retry_write(b);
        }
        return -1;
    }
}

long bio_ctrl(BIO* b, int cmd, long, void*) {
    switch (cmd) {
        case BIO_CTRL_FLUSH: return 1;  // nothing is buffered here
        case BIO_CTRL_EOF: return BIO_test_flags(b, BIO_FLAGS_IN_EOF) ? 1 : 0;
        default: return 0;
    }
}

int bio_create(BIO* b) {
    BIO_set_init(b, 1);
    return 1;
}

BIO_METHOD* poll_fd_method() {
    static BIO_METHOD* m = [] {
        BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tendril PollFd");
        BIO_meth_set_read(bm, bio_read);
        BIO_meth_set_write(bm, bio_write);
        BIO_meth_set_ctrl(bm, bio_ctrl);
        BIO_meth_set_create(bm, bio_create);
        return bm;
    }();
    return m;
}

}  // namespace

TlsSession::TlsSession(std::shared_ptr<TlsContext> context, int fd) : context_(std::move(context)) {
    ssl_ = SSL_new(context_->native());
    if (!ssl_) return;
    if (context_->kernel_tls()) {
        // kTLS needs OpenSSL's own socket BIO to hand the keys to the kernel.
        SSL_set_fd(ssl_, fd);
    } else {
        bio_ = BIO_new(poll_fd_method());
        if (!bio_) {
            SSL_free(ssl_);
            ssl_ = nullptr;
            return;
        }
        SSL_set_bio(ssl_, bio_, bio_);  // owned by the SSL from here on
    }
    // A peer that closes without close_notify is an EOF, as it is on TCP
    // (clients do it all the time); truncation attacks do not apply to
    // HTTP/1.1 bodies, whose framing says where they end.
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    SSL_set_options(ssl_, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
    if (context_->is_server()) SSL_set_accept_state(ssl_);
    else SSL_set_connect_state(ssl_);
}

TlsSession::~TlsSession() {
    if (ssl_) SSL_free(ssl_);
}

template <class Op>
IoResult TlsSession::drive(PollFd& fd, Op op, Deadline deadline, const char* doing) {
    if (!ssl_) {
        error_ = "tls: out of memory";
        return {0, Status::error, ENOMEM};
    }
    if (bio_) BIO_set_data(bio_, &fd);  // the Socket may have moved since the last call
    for (;;) {
        ERR_clear_error();
        errno = 0;  // SSL_ERROR_SYSCALL with errno 0 is an EOF
        int r = op();
        if (r > 0) return {static_cast<std::size_t>(r), Status::ok, 0};
        int e = SSL_get_error(ssl_, r);
        Status st;
        switch (e) {
            case SSL_ERROR_WANT_READ:
                if (!bio_) fd.consumed_read();  // OpenSSL's own read(2) saw EAGAIN (our BIO marks it itself)
                if ((st = fd.wait_readable(deadline)) != Status::ok) return {0, st, 0};
                continue;
            case SSL_ERROR_WANT_WRITE:
                if (!bio_) fd.consumed_write();
                if ((st = fd.wait_writable(deadline)) != Status::ok) return {0, st, 0};
                continue;
            case SSL_ERROR_ZERO_RETURN:
                return {0, Status::eof, 0};
            case SSL_ERROR_SYSCALL: {
                int err = errno;
                if (err == EINTR) continue;
                if (err == 0 || err == ECONNRESET || err == EPIPE) {
                    error_ = std::string("tls: ") + doing + ": the peer closed the connection";
                    return {0, err == 0 ? Status::eof : Status::closed, err};
                }
                error_ = std::string("tls: ") + doing + ": " + std::strerror(err);
                return {0, Status::error, err};
            }
            default:
                error_ = std::string("tls: ") + doing + ": " + TlsContext::take_errors();
                if (long v = SSL_get_verify_result(ssl_); v != X509_V_OK && !context_->is_server())
                    error_ += std::string(" (") + X509_verify_cert_error_string(v) + ")";
                return {0, Status::error, EPROTO};
        }
    }
}

Status TlsSession::handshake(PollFd& fd, std::string_view server_name, Deadline deadline) {
    if (ssl_ && !context_->is_server() && !server_name.empty()) {
        std::string name(server_name);
        in6_addr ip;
        bool literal = ::inet_pton(AF_INET, name.c_str(), &ip) == 1 || ::inet_pton(AF_INET6, name.c_str(), &ip) == 1;
        if (!literal) SSL_set_tlsext_host_name(ssl_, name.c_str());  // RFC 6066: SNI is for host names only
        if (context_->verifies()) SSL_set1_host(ssl_, name.c_str());
    }
    IoResult r = drive(fd, [&] { return SSL_do_handshake(ssl_); }, deadline, "handshake");
    if (r.status == Status::eof && error_.empty()) error_ = "tls: handshake: the peer closed the connection";
    return r.status;
}

IoResult TlsSession::read(PollFd& fd, void* buf, std::size_t n, Deadline deadline) {
    int want = static_cast<int>(n > INT_MAX ? INT_MAX : n);
    return drive(fd, [&] { return SSL_read(ssl_, buf, want); }, deadline, "reading");
}

IoResult TlsSession::write_some(PollFd& fd, const void* buf, std::size_t n, Deadline deadline) {
    if (n == 0) return {};
    int want = static_cast<int>(n > INT_MAX ? INT_MAX : n);
    return drive(fd, [&] { return SSL_write(ssl_, buf, want); }, deadline, "writing");
}

IoResult TlsSession::write_all(PollFd& fd, const void* buf, std::size_t n, Deadline deadline) {
    const char* p = static_cast<const char*>(buf);
    std::size_t done = 0;
    while (done < n) {
        IoResult r = write_some(fd, p + done, n - done, deadline);
        if (!r) return {done, r.status, r.error};
        done += r.n;
    }
    return {done, Status::ok, 0};
}

IoResult TlsSession::writev_all(PollFd& fd, iovec* iov, int count, Deadline deadline) {
    // One record for a head and a small body, not one each.
    constexpr std::size_t kGather = 4 * 1024;  // on the fiber's stack
    std::size_t total = 0;
    for (int i = 0; i < count; ++i) total += iov[i].iov_len;
    if (total <= kGather && count > 1) {
        char buf[kGather];
        std::size_t at = 0;
        for (int i = 0; i < count; ++i) {
            std::memcpy(buf + at, iov[i].iov_base, iov[i].iov_len);
            at += iov[i].iov_len;
        }
        return write_all(fd, buf, total, deadline);
    }
    std::size_t done = 0;
    for (int i = 0; i < count; ++i) {
        IoResult r = write_all(fd, iov[i].iov_base, iov[i].iov_len, deadline);
        done += r.n;
        if (!r) return {done, r.status, r.error};
    }
    return {done, Status::ok, 0};
}

bool TlsSession::has_pending() const { return ssl_ && SSL_has_pending(ssl_); }

bool TlsSession::kernel_send() const {
#ifdef BIO_get_ktls_send
    return ssl_ && BIO_get_ktls_send(SSL_get_wbio(ssl_));
#else
    return false;
#endif
}

IoResult TlsSession::sendfile(PollFd& fd, int file_fd, off_t offset, std::size_t count, Deadline deadline) {
    std::size_t sent = 0;
#ifdef BIO_get_ktls_send
    if (kernel_send()) {
        while (sent < count) {
            std::size_t left = count - sent;
            ERR_clear_error();
            ossl_ssize_t r = SSL_sendfile(ssl_, file_fd, offset + static_cast<off_t>(sent), left, 0);
            if (r > 0) {
                sent += static_cast<std::size_t>(r);
                continue;
            }
            int e = SSL_get_error(ssl_, static_cast<int>(r));
            if (e == SSL_ERROR_WANT_WRITE) {
                fd.consumed_write();
                if (Status st = fd.wait_writable(deadline); st != Status::ok) return {sent, st, 0};
                continue;
            }
            error_ = "tls: sendfile: " + TlsContext::take_errors();
            return {sent, Status::error, errno ? errno : EIO};
        }
        return {sent, Status::ok, 0};
    }
#endif
    // Without kTLS the bytes must pass through user space to be encrypted.
    constexpr std::size_t kChunk = 64 * 1024;
    std::vector<char> buf(std::min(count, kChunk));
    while (sent < count) {
        std::size_t want = std::min(count - sent, buf.size());
        ssize_t r = ::pread(file_fd, buf.data(), want, offset + static_cast<off_t>(sent));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return {sent, Status::error, errno};
        if (r == 0) return {sent, Status::eof, 0};  // the file is shorter than promised
        IoResult w = write_all(fd, buf.data(), static_cast<std::size_t>(r), deadline);
        sent += w.n;
        if (!w) return {sent, w.status, w.error};
    }
    return {sent, Status::ok, 0};
}

Status TlsSession::shutdown(PollFd& fd, Deadline deadline) {
    if (!ssl_) return Status::error;
    // One close_notify; not waiting for the peer's (HTTP does not need it).
    IoResult r = drive(fd, [&] { int v = SSL_shutdown(ssl_); return v >= 0 ? 1 : v; }, deadline, "closing");
    return r.status;
}

const char* TlsSession::version() const { return ssl_ ? SSL_get_version(ssl_) : ""; }

const char* TlsSession::cipher() const { return ssl_ ? SSL_get_cipher_name(ssl_) : ""; }

std::string TlsSession::server_name() const {
    const char* n = ssl_ ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
    return n ? n : "";
}

}  // namespace tendril
