// BaseHTTPServer (see server.hpp).
#include "tendril/http/server.hpp"

#include "tendril/sched/scheduler.hpp"

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

void BaseHTTPServer::serve_connection(Socket& sock, const SocketAddress& peer, TcpServer::Connection& conn) {
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
