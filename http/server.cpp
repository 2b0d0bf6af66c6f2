// BaseHTTPServer (see server.hpp).
#include "tendril/http/server.hpp"

#include "tendril/core/log.hpp"
#include "tendril/sched/scheduler.hpp"

#include <sys/socket.h>

#include <cstring>

namespace tendril::http {

Listener BaseHTTPServer::bind(const SocketAddress& address, const ListenOptions& options) {
    auto l = Listener::listen(address, options);
    if (!l) throw std::system_error(l.error, std::generic_category(), "cannot listen on " + address.to_string());
    return std::move(l.value);
}

BaseHTTPServer::BaseHTTPServer(Listener listener, ServerConfig config)
    : config_(config),
      tcp_(std::move(listener),
           TcpServer::ConnectionHandler([this](Socket& s, const SocketAddress& peer, TcpServer::Connection& c) {
               serve_connection(s, peer, c);
           }),
           TcpServerOptions{0, "http-conn"}) {}

BaseHTTPServer::~BaseHTTPServer() = default;

void BaseHTTPServer::serve_forever() {
    // The config may have been changed since the constructor (apps set it
    // after making the server): the limit is settled here.
    if (config_.connection_limit) tcp_.set_connection_limit(config_.connection_limit);
    else if (config_.max_connections) tcp_.set_connection_limit(std::make_shared<ConnectionLimit>(config_.max_connections));
    else tcp_.set_connection_limit(nullptr);
    tcp_.serve_forever();
}

// The TLS handshake of an HTTPS connection, within the header timeout. A
// plaintext request (a TLS record starts with 0x16, an HTTP method with a
// letter) gets a plaintext 400 that says what happened, as Go answers it.
// Failures are logged as Go logs them ("TLS handshake error from ...").
bool BaseHTTPServer::start_tls(Socket& sock, const SocketAddress& peer) {
    Deadline deadline = Deadline::after(config_.header_timeout);
    unsigned char first = 0;
    Status why = Status::ok;
    ssize_t n = sock.fd().until_ready(
        PollFd::Direction::read, [&] { return ::recv(sock.native(), &first, 1, MSG_PEEK); }, deadline, &why);
    int peek_errno = errno;
    if (n == 1 && first >= 'A' && first <= 'Z') {
        static constexpr std::string_view kPlain =
            "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
            "Client sent an HTTP request to an HTTPS server.\n";
        // Read what the client sent first: closing with unread bytes would
        // reset the connection and lose the answer.
        char sink[4096];
        Deadline linger = Deadline::after(std::chrono::seconds(1));
        (void)sock.read_some(sink, sizeof sink, linger);
        (void)sock.write_all(kPlain, linger);
        (void)sock.shutdown_write();
        while (sock.read_some(sink, sizeof sink, linger).ok()) {
        }
        log(LogLevel::warning, "http: TLS handshake error from %s: client sent an HTTP request to an HTTPS server",
            peer.to_string().c_str());
        return false;
    }
    if (n != 1) {
        if (n == 0 || why == Status::cancelled || why == Status::closed) return false;  // gone, or shutting down
        if (why == Status::timeout)
            log(LogLevel::warning, "http: TLS handshake error from %s: timeout: no handshake within %.3g s",
                peer.to_string().c_str(), std::chrono::duration<double>(config_.header_timeout).count());
        else
            log(LogLevel::warning, "http: TLS handshake error from %s: %s", peer.to_string().c_str(),
                describe(why, peek_errno).c_str());
        return false;
    }
    std::string error;
    Status st = sock.start_tls(config_.tls, deadline, {}, &error);
    if (st != Status::ok) {
        if (st != Status::cancelled)
            log(LogLevel::warning, "http: TLS handshake error from %s: %s", peer.to_string().c_str(), error.c_str());
        return false;
    }
    return true;
}

void BaseHTTPServer::serve_connection(Socket& sock, const SocketAddress& peer, TcpServer::Connection& conn) {
    if (config_.tls && !start_tls(sock, peer)) return;
    std::unique_ptr<BaseHTTPRequestHandler> h = make_handler();
    h->attach(&sock, peer, this, &config_, body_policy());
    // The connection list is TcpServer's; the handler rides on its entry.
    conn.data = h.get();
    struct Detach {
        TcpServer::Connection& c;
        ~Detach() { c.data = nullptr; }
    } detach{conn};
    h->handle();
}

void BaseHTTPServer::shutdown(Deadline grace) {
    if (!tcp_.stopping()) {
        // Keep-alive connections waiting for a next request are closed now;
        // those in the middle of one get the grace period.
        tcp_.for_each_connection([](TcpServer::Connection& c) {
            auto* h = static_cast<BaseHTTPRequestHandler*>(c.data);
            if (h && h->idle()) c.fiber.cancel();
        });
    }
    tcp_.shutdown(grace);
}

}  // namespace tendril::http
