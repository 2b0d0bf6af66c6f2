// HTTPServer: Python's HTTPServer(address, HandlerClass), on TcpServer.
//
//   http::HTTPServer<Hello> server(*SocketAddress::ip("127.0.0.1", 8080));
//   server.serve_forever();
//
// A handler object is made for each connection: default-constructed, or by
// a factory that can hand it shared state:
//
//   http::HTTPServer<CometHandler> server(address, [&] {
//       return std::make_unique<CometHandler>(waiters);
//   });
//
// The handler class may declare its BodyPolicy as class metadata:
//   static constexpr http::BodyPolicy body_policy = http::BodyPolicy::streamed();
//
// shutdown(grace) closes the listener, closes idle keep-alive connections at
// once, lets requests in flight finish until `grace`, then cancels them.
#pragma once

#include "tendril/http/config.hpp"
#include "tendril/http/handler.hpp"
#include "tendril/net/listener.hpp"
#include "tendril/net/tcp_server.hpp"

#include <functional>
#include <memory>
#include <system_error>

namespace tendril::http {

class BaseHTTPServer {
public:
    BaseHTTPServer(Listener listener, ServerConfig config);
    virtual ~BaseHTTPServer();
    BaseHTTPServer(const BaseHTTPServer&) = delete;
    BaseHTTPServer& operator=(const BaseHTTPServer&) = delete;

    // Accept and serve until shutdown(); returns when every connection is done.
    void serve_forever();
    void shutdown(Deadline grace = Deadline::after(std::chrono::seconds(5)));

    SocketAddress server_address() const { return tcp_.local_address(); }
    std::size_t connections() const { return tcp_.connections(); }
    std::uint64_t accepted() const { return tcp_.accepted(); }
    bool stopping() const { return tcp_.stopping(); }
    ServerConfig& config() { return config_; }
    const ServerConfig& config() const { return config_; }

    // Bind and listen, or throw std::system_error (as Python's server raises OSError).
    static Listener bind(const SocketAddress& address, const ListenOptions& options = {});

protected:
    virtual std::unique_ptr<BaseHTTPRequestHandler> make_handler() = 0;
    virtual BodyPolicy body_policy() const { return BodyPolicy{}; }

private:
    void serve_connection(Socket& sock, const SocketAddress& peer, TcpServer::Connection& conn);
    bool start_tls(Socket& sock, const SocketAddress& peer);
    ServerConfig config_;
    TcpServer tcp_;  // its connection list is the live set of handlers too
};

template <class Handler>
class HTTPServer : public BaseHTTPServer {
public:
    using Factory = std::function<std::unique_ptr<Handler>()>;

    explicit HTTPServer(const SocketAddress& address, Factory factory = nullptr, ServerConfig config = {})
        : HTTPServer(bind(address), std::move(factory), config) {}
    HTTPServer(Listener listener, Factory factory = nullptr, ServerConfig config = {})
        : BaseHTTPServer(std::move(listener), config), factory_(std::move(factory)) {
        if (!factory_) {
            if constexpr (std::is_default_constructible_v<Handler>)
                factory_ = [] { return std::make_unique<Handler>(); };
            else
                throw std::logic_error("HTTPServer: this handler needs a factory");
        }
    }

protected:
    std::unique_ptr<BaseHTTPRequestHandler> make_handler() override { return factory_(); }
    BodyPolicy body_policy() const override {
        if constexpr (requires { Handler::body_policy; }) return Handler::body_policy;
        else return BodyPolicy{};
    }

private:
    Factory factory_;
};

}  // namespace tendril::http
