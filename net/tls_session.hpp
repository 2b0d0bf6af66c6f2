// TlsSession: one TLS connection (an OpenSSL SSL) over a descriptor that
// parks the fiber, as Go's tls.Conn wraps a net.Conn.
//
// OpenSSL reads and writes the non-blocking socket through a BIO that keeps
// PollFd's readiness flags (tls_session.cpp says why); when it needs
// bytes that are not there (SSL_ERROR_WANT_READ) or room that is not
// (WANT_WRITE) the fiber parks on the PollFd until the next edge, under the
// call's Deadline, and the call is retried -- a handshake, a read and a
// write all in the same loop. A Socket that has one (Socket::start_tls)
// sends everything through it; users of Socket, the HTTP server and client
// included, do not change.
#pragma once

#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/net/poll_fd.hpp"
#include "tendril/net/tls_context.hpp"

#include <sys/types.h>
#include <sys/uio.h>

#include <memory>
#include <string>
#include <string_view>

struct ssl_st;  // OpenSSL's SSL
struct bio_st;  // OpenSSL's BIO

namespace tendril {

class TlsSession {
public:
    // Bound to fd's descriptor; the handshake has not started.
    TlsSession(std::shared_ptr<TlsContext> context, int fd);
    ~TlsSession();
    TlsSession(const TlsSession&) = delete;
    TlsSession& operator=(const TlsSession&) = delete;

    // server_name: the client's SNI and the name its certificate must carry
    // (ignored by a server). ok, or timeout/cancelled/closed/eof/error with
    // last_error() saying why ("certificate verify failed", "wrong version
    // number", "unexpected eof while reading").
    [[nodiscard]] Status handshake(PollFd& fd, std::string_view server_name, Deadline deadline);

    IoResult read(PollFd& fd, void* buf, std::size_t n, Deadline deadline);
    IoResult write_some(PollFd& fd, const void* buf, std::size_t n, Deadline deadline);
    IoResult write_all(PollFd& fd, const void* buf, std::size_t n, Deadline deadline);
    // Everything in iov; small pieces go out as one record.
    IoResult writev_all(PollFd& fd, iovec* iov, int count, Deadline deadline);
    // count bytes of file_fd from offset: by SSL_sendfile where the kernel
    // does the encryption (kTLS), else read and written through a buffer.
    IoResult sendfile(PollFd& fd, int file_fd, off_t offset, std::size_t count, Deadline deadline);
    // Send close_notify (best effort within the deadline).
    Status shutdown(PollFd& fd, Deadline deadline);

    // Bytes OpenSSL has already taken off the socket (a decrypted record
    // not yet read, or read-ahead records): the descriptor will raise no
    // edge for them, so a caller must read before it waits.
    bool has_pending() const;
    bool kernel_send() const;  // kTLS took over encryption of what we send
    const char* version() const;  // "TLSv1.3"
    const char* cipher() const;
    std::string server_name() const;  // the SNI the client asked for (server side)
    const std::string& last_error() const { return error_; }

private:
    template <class Op>
    IoResult drive(PollFd& fd, Op op, Deadline deadline, const char* doing);

    std::shared_ptr<TlsContext> context_;  // the SSL refers to its SSL_CTX
    ssl_st* ssl_ = nullptr;
    bio_st* bio_ = nullptr;  // ours over the PollFd (owned by ssl_), or null: OpenSSL's socket BIO for kTLS
    std::string error_;
};

}  // namespace tendril
