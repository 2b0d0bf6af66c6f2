// Helpers for HTTP tests: a server on an ephemeral loopback port for the
// duration of a test, and readers for raw responses.
#pragma once

#include <tendril/http/client.hpp>
#include <tendril/http/response_parser.hpp>
#include <tendril/http/server.hpp>
#include <tendril/net/listener.hpp>
#include <tendril/sched/scheduler.hpp>

#include <functional>
#include <string>
#include <vector>

namespace tendril::test {

// Run body(address) against an HTTPServer<H> started on 127.0.0.1:0.
template <class H>
void with_server(http::ServerConfig config, const std::function<void(SocketAddress, http::BaseHTTPServer&)>& body,
                 typename http::HTTPServer<H>::Factory factory = nullptr) {
    run([&] {
        config.access_log = false;
        http::HTTPServer<H> server(http::BaseHTTPServer::bind(*SocketAddress::ip("127.0.0.1", 0)),
                                   std::move(factory), config);
        auto srv = go([&] { server.serve_forever(); }, FiberOptions{"test-server"});
        body(server.server_address(), server);
        server.shutdown(Deadline::after(std::chrono::seconds(2)));
        (void)srv.join();
    });
}

// Read n complete responses from a socket (pipelining, keep-alive).
inline std::vector<http::Response> read_responses(Socket& s, std::size_t n, Deadline deadline,
                                                  bool head_request = false, std::string* rest = nullptr) {
    std::vector<http::Response> out;
    http::ResponseParser p;
    p.reset(head_request);
    std::string buf;
    bool eof = false;
    while (out.size() < n) {
        std::size_t used = 0;
        auto ev = buf.empty() ? (eof ? p.finish() : http::ResponseParser::Event::need_more)
                              : p.feed(buf.data(), buf.size(), &used);
        if (ev == http::ResponseParser::Event::body) p.response().body.append(p.body_piece());
        buf.erase(0, used);
        if (ev == http::ResponseParser::Event::end) {
            out.push_back(p.response());
            p.reset(head_request);
            continue;
        }
        if (ev == http::ResponseParser::Event::error) break;
        if (ev == http::ResponseParser::Event::need_more) {
            if (eof) break;
            char tmp[8192];
            IoResult r = s.read_some(tmp, sizeof tmp, deadline);
            if (r.status == Status::eof) eof = true;
            else if (!r) break;
            else buf.append(tmp, r.n);
        }
    }
    if (rest) *rest = buf;
    return out;
}

// True once the server has closed its side (read returns EOF).
inline bool closed_by_peer(Socket& s, Deadline deadline) {
    char c;
    IoResult r = s.read_some(&c, 1, deadline);
    return r.status == Status::eof || r.status == Status::closed || (r.status == Status::error);
}

}  // namespace tendril::test
