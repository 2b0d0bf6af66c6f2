// BaseHTTPRequestHandler over real loopback sockets: every status of the
// wire contract, HEAD, keep-alive rules, pipelining, chunked bodies both
// ways, 100-continue, slow clients, errors in handlers, and the access log.
#include <doctest/doctest.h>

#include "support.hpp"

#include <tendril/http/client.hpp>
#include <tendril/http/server.hpp>
#include <tendril/net/listener.hpp>
#include <tendril/sched/channel.hpp>
#include <tendril/sched/wait_group.hpp>

#include <string>
#include <vector>

using namespace tendril;
using namespace tendril::http;
using tendril::test::closed_by_peer;
using tendril::test::read_responses;
using tendril::test::with_server;

namespace {

std::vector<std::string> g_log;  // lines the test handlers logged

class TestHandler : public BaseHTTPRequestHandler {
public:
    void log_message(std::string_view m) override { g_log.emplace_back(m); }

    void do_GET() override {
        if (path == "/hello") return reply(200, "hello");
        if (path == "/chunked") {
            send_response(200);
            send_header("Content-Type", "text/plain");
            end_headers();
            wfile.write("one,");
            wfile.flush();
            wfile.write("two,");
            wfile.write("three");
            return;
        }
        if (path == "/throw") throw std::runtime_error("handler bug");
        if (path == "/teapot") throw HttpError(418, "short and stout");
        if (path == "/silent") return;
        if (path == "/abort") {
            send_response(200);
            end_headers();
            wfile.write("partial");
            wfile.flush();
            abort_connection();
        }
        if (path == "/implicit") return wfile.write("implicit 200");
        if (path.rfind("/escape", 0) == 0) return send_error(400, "<script>alert(1)</script>", "a & b");
        if (path == "/value") return send(Response(201, "made", "text/plain"));
        if (path == "/slow") {
            (void)sleep_for(std::chrono::milliseconds(50));
            return reply(200, "slow");
        }
        if (path.rfind("/request", 0) == 0) {
            // The request as a value, handed to another fiber over a channel.
            Channel<Request> ch(1);
            REQUIRE(ch.send(request()) == Status::ok);
            Request copy;
            REQUIRE(ch.recv(copy) == Status::ok);
            return reply(200, copy.method + " " + copy.target + " " + std::string(copy.headers.get("X-Probe", "-")));
        }
        send_error(404);
    }
    void do_POST() override {
        if (path == "/echo") return reply(200, body());
        send_error(404);
    }
    void reply(int code, std::string_view text) {
        send_response(code);
        send_header("Content-Type", "text/plain");
        send_header("Content-Length", std::to_string(text.size()));
        end_headers();
        wfile.write(text);
    }
};

class SmallBodies : public TestHandler {
public:
    static constexpr BodyPolicy body_policy = BodyPolicy::buffered(16);
};

class Streaming : public TestHandler {
public:
    static constexpr BodyPolicy body_policy = BodyPolicy::streamed();
    void do_POST() override {
        if (path == "/reject") return reply(400, "not reading that");
        // Count and checksum the body as it streams in; echo it chunked back.
        std::size_t n = 0;
        unsigned sum = 0;
        send_response(200);
        end_headers();
        for (std::string_view piece; !(piece = rfile.read_chunk()).empty();) {
            n += piece.size();
            for (unsigned char c : piece) sum = sum * 31 + c;
            wfile.write(piece);
        }
        wfile.write("|" + std::to_string(n) + ":" + std::to_string(sum));
    }
};

class NeedsLength : public TestHandler {
public:
    static constexpr BodyPolicy body_policy = BodyPolicy::streamed(true);
};

std::string raw(SocketAddress at, std::string_view bytes) {
    Client c(at);
    auto r = c.raw(bytes, Deadline::after(std::chrono::seconds(5)));
    return r.value;
}

int status_of(const std::string& response) {
    if (response.size() < 12 || response.compare(0, 5, "HTTP/") != 0) return 0;
    return std::stoi(response.substr(9, 3));
}

}  // namespace

TEST_CASE("each malformed or unsupported request gets its status, and the server stays healthy") {
    with_server<TestHandler>({}, [](SocketAddress at, BaseHTTPServer&) {
        struct Row {
            std::string request;
            int status;
        };
        std::vector<Row> rows = {
            {"GARBAGE\r\n\r\n", 400},
            {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400},
            {"GET /" + std::string(65 * 1024, 'u') + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
            {"GET / HTTP/1.1\r\nHost: x\r\nBig: " + std::string(65 * 1024, 'h') + "\r\n\r\n", 431},
            {"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 501},
            {"PUT /hello HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 501},  // no do_PUT
            {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
            {"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
            {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
            {"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400},
            {"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400},
        };
        for (const Row& row : rows) {
            std::string resp = raw(at, row.request);
            INFO("request: " << row.request.substr(0, 60));
            CHECK(status_of(resp) == row.status);
            CHECK(resp.find("Connection: close") != std::string::npos);
        }
        // Still healthy.
        Client c(at);
        auto ok = c.get("/hello", Deadline::after(std::chrono::seconds(5)));
        REQUIRE(ok.ok());
        CHECK(ok->body == "hello");
    });
}

TEST_CASE("413 before reading a too-large body, with or without Content-Length; 411 when a length is required") {
    with_server<SmallBodies>({}, [](SocketAddress at, BaseHTTPServer&) {
        // Announced too large: refused at once, no 100 Continue, body never read.
        Socket s = std::move(Socket::connect(at, Deadline::after(std::chrono::seconds(5))).value);
        REQUIRE(s.write_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n").ok());
        auto rs = read_responses(s, 1, Deadline::after(std::chrono::seconds(5)));
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].status == 413);
        // Chunked, growing past the limit.
        std::string chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n";
        CHECK(status_of(raw(at, chunked)) == 413);
        // Within the limit: fine, both ways.
        Client c(at);
        auto small = c.post("/echo", "sixteen bytes ok", "text/plain", Deadline::after(std::chrono::seconds(5)));
        REQUIRE(small.ok());
        CHECK(small->body == "sixteen bytes ok");
    });
    with_server<NeedsLength>({}, [](SocketAddress at, BaseHTTPServer&) {
        std::string chunked = "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        CHECK(status_of(raw(at, chunked)) == 411);
    });
}

TEST_CASE("HEAD is answered like GET without a body, and the connection stays usable") {
    with_server<TestHandler>({}, [](SocketAddress at, BaseHTTPServer&) {
        Socket s = std::move(Socket::connect(at, Deadline::after(std::chrono::seconds(5))).value);
        REQUIRE(s.write_all("HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n").ok());
        auto rs = read_responses(s, 1, Deadline::after(std::chrono::seconds(5)), true);
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].status == 200);
        CHECK(rs[0].headers.get("Content-Length").value() == "5");
        CHECK(rs[0].body.empty());
        REQUIRE(s.write_all("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").ok());
        rs = read_responses(s, 1, Deadline::after(std::chrono::seconds(5)));
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].body == "hello");
    });
}

TEST_CASE("keep-alive follows the version rules of HTTP/1.0 and 1.1") {
    with_server<TestHandler>({}, [](SocketAddress at, BaseHTTPServer& server) {
        auto conn = [&] { return std::move(Socket::connect(at, Deadline::after(std::chrono::seconds(5))).value); };
        Deadline d = Deadline::after(std::chrono::seconds(5));
        {  // 1.1: persistent by default
            Socket s = conn();
            for (int i = 0; i < 3; ++i) {
                REQUIRE(s.write_all("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").ok());
                REQUIRE(read_responses(s, 1, d).size() == 1);
            }
            // 1.1 with Connection: close: answered, then closed.
            REQUIRE(s.write_all("GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok());
            auto rs = read_responses(s, 1, d);
            REQUIRE(rs.size() == 1);
            CHECK(rs[0].headers.get("Connection").value() == "close");
            CHECK(closed_by_peer(s, d));
        }
        {  // 1.0: closes by default
            Socket s = conn();
            REQUIRE(s.write_all("GET /hello HTTP/1.0\r\n\r\n").ok());
            REQUIRE(read_responses(s, 1, d).size() == 1);
            CHECK(closed_by_peer(s, d));
        }
        {  // 1.0 with keep-alive: told so, and kept
            Socket s = conn();
            REQUIRE(s.write_all("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").ok());
            auto rs = read_responses(s, 1, d);
            REQUIRE(rs.size() == 1);
            CHECK(rs[0].headers.get("Connection").value() == "keep-alive");
            REQUIRE(s.write_all("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").ok());
            CHECK(read_responses(s, 1, d).size() == 1);
        }
        {  // 1.0 and a body of unknown length: close-delimited
            Socket s = conn();
            REQUIRE(s.write_all("GET /chunked HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").ok());
            auto rs = read_responses(s, 1, d);
            REQUIRE(rs.size() == 1);
            CHECK(rs[0].body == "one,two,three");
            CHECK_FALSE(rs[0].headers.contains("Transfer-Encoding"));
        }
        (void)server;
    });
}

TEST_CASE("three pipelined requests in one write are answered in order") {
    with_server<TestHandler>({}, [](SocketAddress at, BaseHTTPServer&) {
        Socket s = std::move(Socket::connect(at, Deadline::after(std::chrono::seconds(5))).value);
        REQUIRE(s.write_all("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                            "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond"
                            "GET /value HTTP/1.1\r\nHost: x\r\n\r\n").ok());
        auto rs = read_responses(s, 3, Deadline::after(std::chrono::seconds(5)));
        REQUIRE(rs.size() == 3);
        CHECK(rs[0].body == "hello");
        CHECK(rs[1].body == "second");
        CHECK(rs[2].status == 201);
        CHECK(rs[2].body == "made");
    });
}

TEST_CASE("chunked request bodies stream in; bodies of unknown length go out chunked to HTTP/1.1") {
    with_server<Streaming>({}, [](SocketAddress at, BaseHTTPServer&) {
        Client c(at);
        Deadline d = Deadline::after(std::chrono::seconds(5));
        Request head;
        head.method = "POST";
        head.target = "/upload";
        REQUIRE(c.send_head(head, std::nullopt, true, d) == Status::ok);
        std::string sent;
        for (int i = 0; i < 50; ++i) {
            std::string piece(1000 + i, static_cast<char>('a' + i % 26));
            sent += piece;
            REQUIRE(c.write_body(piece, d) == Status::ok);
        }
        REQUIRE(c.finish_body(d) == Status::ok);
        auto h = c.read_head(d);
        REQUIRE(h.ok());
        CHECK(h->headers.get("Transfer-Encoding").value() == "chunked");
        auto b = c.read_body_all(d);
        REQUIRE(b.ok());
        unsigned sum = 0;
        for (unsigned char ch : sent) sum = sum * 31 + ch;
        CHECK(b.value == sent + "|" + std::to_string(sent.size()) + ":" + std::to_string(sum));
    });
}

TEST_CASE("Expect: 100-continue gets 100 Continue before the body is read") {
    with_server<Streaming>({}, [](SocketAddress at, BaseHTTPServer&) {
        Deadline d = Deadline::after(std::chrono::seconds(5));
        Socket s = std::move(Socket::connect(at, d).value);
        REQUIRE(s.write_all("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").ok());
        char buf[256];
        IoResult r = s.read_some(buf, sizeof buf, d);
        REQUIRE(r.ok());
        CHECK(std::string(buf, r.n) == "HTTP/1.1 100 Continue\r\n\r\n");
        REQUIRE(s.write_all("hello").ok());
        auto rs = read_responses(s, 1, d);
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].body.rfind("hello|5:", 0) == 0);
        // A handler that answers without reading never sends 100 Continue,
        // and the connection is closed (the client's body would follow).
        Socket s2 = std::move(Socket::connect(at, d).value);
        REQUIRE(s2.write_all("POST /reject HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").ok());
        rs = read_responses(s2, 1, d);
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].status == 400);
        CHECK(closed_by_peer(s2, d));
    });
}

TEST_CASE("a client sending one byte at a time gets 408; a normal client is served meanwhile") {
    ServerConfig cfg;
    cfg.header_timeout = std::chrono::milliseconds(400);
    with_server<TestHandler>(cfg, [](SocketAddress at, BaseHTTPServer&) {
        std::string slow_result;
        bool normal_done_first = false;
        WaitGroup wg;
        wg.add();
        go([&] {
            Deadline d = Deadline::after(std::chrono::seconds(5));
            Socket s = std::move(Socket::connect(at, d).value);
            std::string req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
            for (char c : req) {  // a byte every 100 ms: the head never completes in time
                if (!s.write_all(std::string_view(&c, 1), d)) break;
                if (sleep_for(std::chrono::milliseconds(100)) != Status::ok) break;
            }
            char buf[4096];
            IoResult r = s.read_some(buf, sizeof buf, d);
            if (r) slow_result.assign(buf, r.n);
            wg.done();
        });
        (void)sleep_for(std::chrono::milliseconds(150));
        Client c(at);
        auto ok = c.get("/hello", Deadline::after(std::chrono::seconds(5)));
        REQUIRE(ok.ok());
        CHECK(ok->body == "hello");
        normal_done_first = slow_result.empty();
        REQUIRE(wg.wait() == Status::ok);
        CHECK(normal_done_first);
        CHECK(status_of(slow_result) == 408);
    });
}

TEST_CASE("send_error escapes its text; errors in handlers become 500 or their status, and the server lives on") {
    g_log.clear();
    with_server<TestHandler>({}, [](SocketAddress at, BaseHTTPServer&) {
        Client c(at);
        Deadline d = Deadline::after(std::chrono::seconds(5));
        auto e = c.get("/escape", d);
        REQUIRE(e.ok());
        CHECK(e->status == 400);
        CHECK(e->body.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
        CHECK(e->body.find("<script>") == std::string::npos);
        CHECK(e->body.find("a &amp; b") != std::string::npos);
        CHECK(e->headers.get("Content-Type").value() == "text/html;charset=utf-8");

        auto t = c.get("/throw", d);
        REQUIRE(t.ok());
        CHECK(t->status == 500);
        auto tea = c.get("/teapot", d);
        REQUIRE(tea.ok());
        CHECK(tea->status == 418);
        auto silent = c.get("/silent", d);
        REQUIRE(silent.ok());
        CHECK(silent->status == 500);
        auto implicit = c.get("/implicit", d);
        REQUIRE(implicit.ok());
        CHECK(implicit->status == 200);
        CHECK(implicit->body == "implicit 200");
        auto again = c.get("/hello", d);
        REQUIRE(again.ok());
        CHECK(again->body == "hello");
    });
    bool logged = false;
    for (auto& l : g_log) logged |= l.find("exception in do_GET(): handler bug") != std::string::npos;
    CHECK(logged);
}

TEST_CASE("the Request value travels through a channel; the client reuses its connection") {
    with_server<TestHandler>({}, [](SocketAddress at, BaseHTTPServer& server) {
        Client c(at);
        Request r;
        r.target = "/request?x=1";
        r.headers.add("X-Probe", "probe-value");
        auto resp = c.request(r, Deadline::after(std::chrono::seconds(5)));
        REQUIRE(resp.ok());
        CHECK(resp->body == "GET /request?x=1 probe-value");
        for (int i = 0; i < 5; ++i) REQUIRE(c.get("/hello", Deadline::after(std::chrono::seconds(5))).ok());
        CHECK(server.accepted() == 1);
    });
}

TEST_CASE("the access log line is Python's Common Log Format") {
    g_log.clear();
    with_server<TestHandler>({}, [](SocketAddress at, BaseHTTPServer& server) {
        server.config().access_log = true;
        Client c(at);
        REQUIRE(c.get("/hello", Deadline::after(std::chrono::seconds(5))).ok());
    });
    REQUIRE_FALSE(g_log.empty());
    CHECK(g_log.back() == "\"GET /hello HTTP/1.1\" 200 -");
}

TEST_CASE("shutdown closes idle keep-alive connections at once and lets a request in flight finish") {
    run([] {
        ServerConfig cfg;
        cfg.access_log = false;
        HTTPServer<TestHandler> server(BaseHTTPServer::bind(*SocketAddress::ip("127.0.0.1", 0)), nullptr, cfg);
        auto at = server.server_address();
        auto srv = go([&] { server.serve_forever(); });
        Deadline d = Deadline::after(std::chrono::seconds(5));
        Socket idle = std::move(Socket::connect(at, d).value);
        REQUIRE(idle.write_all("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n").ok());
        REQUIRE(read_responses(idle, 1, d).size() == 1);
        Socket busy = std::move(Socket::connect(at, d).value);
        REQUIRE(busy.write_all("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").ok());
        (void)sleep_for(std::chrono::milliseconds(10));
        server.shutdown(Deadline::after(std::chrono::seconds(2)));
        auto rs = read_responses(busy, 1, d);
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].body == "slow");
        CHECK(rs[0].headers.get("Connection").value() == "close");
        CHECK(closed_by_peer(idle, d));
        (void)srv.join();
    });
}

TEST_CASE("abort_connection ends a chunked response without its last chunk") {
    with_server<TestHandler>({}, [](SocketAddress at, BaseHTTPServer&) {
        std::string resp = raw(at, "GET /abort HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(resp.find("Transfer-Encoding: chunked") != std::string::npos);
        CHECK(resp.find("partial") != std::string::npos);
        CHECK(resp.find("\r\n0\r\n\r\n") == std::string::npos);  // never completed
        auto parsed = Response::parse(resp);
        CHECK_FALSE(parsed.ok());  // a client sees an incomplete response
    });
}

TEST_CASE("refused requests are logged with the request line as received") {
    g_log.clear();
    with_server<TestHandler>({}, [](SocketAddress at, BaseHTTPServer& server) {
        server.config().access_log = true;
        CHECK(status_of(raw(at, "FOO / HTTP/1.1\r\nHost: x\r\n\r\n")) == 501);
        CHECK(status_of(raw(at, "GET / HTTP/2.0\r\nHost: x\r\n\r\n")) == 505);
        CHECK(status_of(raw(at, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")) == 505);
        CHECK(status_of(raw(at, "garbage\r\n\r\n")) == 400);
    });
    auto logged = [](const std::string& line) {
        for (auto& l : g_log)
            if (l == line) return true;
        return false;
    };
    CHECK(logged("\"FOO / HTTP/1.1\" 501 -"));
    CHECK(logged("\"GET / HTTP/2.0\" 505 -"));
    CHECK(logged("\"PRI * HTTP/2.0\" 505 -"));
    CHECK(logged("\"garbage\" 400 -"));
}

TEST_CASE("a client still sending a refused body reads the 413 instead of a reset") {
    with_server<SmallBodies>({}, [](SocketAddress at, BaseHTTPServer&) {
        Deadline d = Deadline::after(std::chrono::seconds(5));
        Socket s = std::move(Socket::connect(at, d).value);
        std::string big(2 << 20, 'z');
        auto writer = go([&] {
            (void)s.write_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(big.size()) +
                              "\r\n\r\n", d);
            (void)s.write_all(big, d);  // the server stops reading long before the end
        });
        auto rs = read_responses(s, 1, d);
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].status == 413);
        s.close();
        (void)writer.join();
    });
}

TEST_CASE("a body that stops mid-way: earlier pipelined answers still arrive; a body timeout gets its 408") {
    with_server<Streaming>({}, [](SocketAddress at, BaseHTTPServer&) {
        Deadline d = Deadline::after(std::chrono::seconds(5));
        Socket s = std::move(Socket::connect(at, d).value);
        // A complete request, then one whose body never finishes, then EOF.
        REQUIRE(s.write_all("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"
                            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort", d).ok());
        REQUIRE(s.shutdown_write() == Status::ok);
        auto rs = read_responses(s, 2, d);
        REQUIRE(rs.size() >= 1);
        CHECK(rs[0].status == 200);
        CHECK(rs[0].body.rfind("ok|2:", 0) == 0);
    });
    ServerConfig cfg;
    cfg.body_timeout = std::chrono::milliseconds(200);
    with_server<SmallBodies>(cfg, [](SocketAddress at, BaseHTTPServer&) {
        Deadline d = Deadline::after(std::chrono::seconds(5));
        Socket s = std::move(Socket::connect(at, d).value);
        REQUIRE(s.write_all("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", d).ok());
        auto rs = read_responses(s, 1, d);
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].status == 408);
    });
}

TEST_CASE("a 100 Continue never overtakes answers to earlier pipelined requests") {
    with_server<Streaming>({}, [](SocketAddress at, BaseHTTPServer&) {
        Deadline d = Deadline::after(std::chrono::seconds(5));
        Socket s = std::move(Socket::connect(at, d).value);
        REQUIRE(s.write_all("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\none"
                            "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", d).ok());
        std::string got;
        char buf[4096];
        while (got.find("100 Continue") == std::string::npos) {
            IoResult r = s.read_some(buf, sizeof buf, d);
            REQUIRE(r.ok());
            got.append(buf, r.n);
        }
        // The first answer is complete before the interim response starts.
        auto cont = got.find("HTTP/1.1 100 Continue\r\n\r\n");
        auto first = Response::parse(got.substr(0, cont));
        REQUIRE(first.ok());
        CHECK(first->body.rfind("one|3:", 0) == 0);
        REQUIRE(s.write_all("two", d).ok());
        auto rs = read_responses(s, 1, d);
        REQUIRE(rs.size() == 1);
        CHECK(rs[0].body.rfind("two|3:", 0) == 0);
    });
}

TEST_CASE("the client says why an exchange failed") {
    run([] {
        using namespace std::chrono_literals;
        auto l = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
        REQUIRE(l.ok());
        const SocketAddress at = l->local_address();
        // Each connection gets one misbehaviour: what the server sends before it closes.
        const std::vector<std::pair<std::string, std::string>> cases = {
            {"", "the server closed the connection before the response head"},
            {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", "the server closed the connection in the middle"},
            {"garbage\r\n\r\n", "malformed response: "},
        };
        FiberHandle server = go([&] {
            for (const auto& c : cases) {
                auto s = l->accept(Deadline::after(5s));
                REQUIRE(s.ok());
                char buf[1024];
                REQUIRE(s->read_some(buf, sizeof buf, Deadline::after(5s)).ok());
                if (!c.first.empty()) REQUIRE(s->write_all(c.first).ok());
            }
        });
        for (const auto& c : cases) {
            ClientOptions closing;
            closing.keep_alive = false;
            Client client(at, closing);
            auto r = client.get("/", Deadline::after(5s));
            CHECK_FALSE(r.ok());
            CHECK_MESSAGE(client.last_error().find(c.second) == 0, client.last_error());
        }
        CHECK(server.join() == Status::ok);
        l->close();
        Client refused(at);
        auto r = refused.get("/", Deadline::after(5s));
        CHECK(r.status == Status::error);
        CHECK(r.error == ECONNREFUSED);
        CHECK_MESSAGE(refused.last_error().find("connect to 127.0.0.1:") == 0, refused.last_error());
        CHECK_MESSAGE(refused.last_error().find("refused") != std::string::npos, refused.last_error());
        // The same client fails, then succeeds: the old reason is gone.
        auto ok_server = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
        REQUIRE(ok_server.ok());
        ClientOptions closing;
        closing.keep_alive = false;
        Client again(ok_server->local_address(), closing);
        FiberHandle answer = go([&] {
            for (int i = 0; i < 2; ++i) {
                auto s = ok_server->accept(Deadline::after(5s));
                REQUIRE(s.ok());
                char buf[1024];
                REQUIRE(s->read_some(buf, sizeof buf, Deadline::after(5s)).ok());
                if (i == 1) REQUIRE(s->write_all("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").ok());
            }
        });
        CHECK_FALSE(again.get("/", Deadline::after(5s)).ok());
        CHECK_FALSE(again.last_error().empty());
        auto good = again.get("/", Deadline::after(5s));
        REQUIRE(good.ok());
        CHECK(good->body == "ok");
        CHECK_MESSAGE(again.last_error().empty(), again.last_error());
        CHECK(answer.join() == Status::ok);
    });
}
