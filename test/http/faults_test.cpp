// Faults at the HTTP layer: what the world does to a server, in-process.
//
//   - a handler that overflows its stack ends the process with a report naming
//     the fiber, not silent corruption (child process);
//   - SIGPIPE: a response going out by sendfile(2) to a client that has gone
//     away must not kill the server (child process: it would kill us);
//   - EINTR: socket I/O, sleeps and whole HTTP exchanges under a storm of
//     signals whose handler is installed without SA_RESTART: every byte arrives;
//   - the timeouts that bound what hostile clients can hold: a reader that never
//     reads (write_timeout), an upload that stalls (body_timeout), an idle
//     keep-alive connection (idle_timeout);
//   - backpressure: a handler writing to a client that does not read parks in
//     its write with at most output_buffer_limit bytes buffered.
// The app-level counterparts are in test/apps/faults_test.py.
#include <doctest/doctest.h>

#include "../support.hpp"
#include "support.hpp"

#include <tendril/core/context.hpp>
#include <tendril/http/client.hpp>
#include <tendril/http/server.hpp>
#include <tendril/net/listener.hpp>
#include <tendril/sched/wait_group.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

using namespace tendril;
using namespace tendril::http;
using namespace std::chrono_literals;
using tendril::test::closed_by_peer;
using tendril::test::read_responses;
using tendril::test::with_server;

namespace {

// --- shared bits ----------------------------------------------------------------------

// Touch about depth KiB of stack.
__attribute__((noinline)) int recurse(int depth) {
    volatile char buf[1024];
    for (auto& c : buf) c = static_cast<char>(depth);
    if (depth <= 0) return buf[7];
    return recurse(depth - 1) + buf[3];
}

// The byte at position i of the test streams.
inline unsigned char pattern(std::uint64_t i) { return static_cast<unsigned char>(i * 131 + (i >> 17)); }

std::string pattern_bytes(std::uint64_t from, std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t k = 0; k < n; ++k) s[k] = static_cast<char>(pattern(from + k));
    return s;
}

// An unlinked temporary file of n pattern bytes; its descriptor, or -1.
// (No doctest assertions: child scenarios use it outside any test case.)
int pattern_file(std::size_t n) {
    char name[] = "/tmp/tendril-faults-XXXXXX";
    int fd = ::mkstemp(name);
    if (fd < 0) return -1;
    ::unlink(name);
    for (std::size_t at = 0; at < n; at += 1 << 20) {
        std::string piece = pattern_bytes(at, std::min<std::size_t>(1 << 20, n - at));
        if (::write(fd, piece.data(), piece.size()) != static_cast<ssize_t>(piece.size())) {
            ::close(fd);
            return -1;
        }
    }
    return fd;
}

// A server for the fault scenarios.
//   GET /recurse   recurses until the stack runs out
//   GET /file      the file g_file_fd (g_file_size bytes) by send_file, 256 KiB slices
//   GET /big       64 MiB written through wfile
//   GET /small     "ok"
//   POST /check    streams the body in, answers "<bytes> <first bad offset or -1>"
int g_file_fd = -1;
std::size_t g_file_size = 0;

class FaultHandler : public BaseHTTPRequestHandler {
public:
    static constexpr BodyPolicy body_policy = BodyPolicy::streamed();

    void do_GET() override {
        if (path == "/recurse") {
            int r = recurse(1 << 20);
            return send(Response(200, std::to_string(r), "text/plain"));
        }
        if (path == "/file") {
            send_response(200);
            send_header("Content-Length", std::to_string(g_file_size));
            end_headers();
            return send_file(g_file_fd, 0, g_file_size, 256 * 1024);
        }
        if (path == "/big") {
            send_response(200);
            send_header("Content-Length", std::to_string(64u << 20));
            end_headers();
            std::string piece(1 << 20, 'b');
            for (int i = 0; i < 64; ++i) wfile.write(piece);
            return;
        }
        send(Response(200, "ok", "text/plain"));
    }

    void do_POST() override {
        std::uint64_t n = 0;
        long long bad = -1;
        for (std::string_view piece; !(piece = rfile.read_chunk()).empty();) {
            for (std::size_t k = 0; k < piece.size() && bad < 0; ++k)
                if (static_cast<unsigned char>(piece[k]) != pattern(n + k)) bad = static_cast<long long>(n + k);
            n += piece.size();
        }
        send(Response(200, std::to_string(n) + " " + std::to_string(bad), "text/plain"));
    }
};

ServerConfig quiet_config() {
    ServerConfig c;
    c.access_log = false;
    return c;
}

// Signals, as fast as a thread can send them, to one thread, with a handler that
// does nothing and is installed without SA_RESTART: every blocking call of that
// thread may come back with EINTR.
std::atomic<long> g_signals{0};
void count_signal(int) { g_signals.fetch_add(1, std::memory_order_relaxed); }

class SignalStorm {
public:
    explicit SignalStorm(int sig) : sig_(sig), target_(::pthread_self()) {
        struct sigaction sa{};
        sa.sa_handler = count_signal;
        sa.sa_flags = 0;  // no SA_RESTART
        sigemptyset(&sa.sa_mask);
        REQUIRE(::sigaction(sig_, &sa, &old_) == 0);
        thread_ = std::thread([this] {
            while (!stop_.load()) {
                ::pthread_kill(target_, sig_);
                std::this_thread::sleep_for(std::chrono::microseconds(50));
            }
        });
    }
    ~SignalStorm() {
        stop_.store(true);
        thread_.join();
        // A signal still pending for this thread is delivered on the way out of
        // the next system call, to our handler, before the old one is back.
        ::usleep(1000);
        ::sigaction(sig_, &old_, nullptr);
    }

private:
    int sig_;
    pthread_t target_;
    struct sigaction old_{};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace

// --- a handler that overflows its stack --------------------------------------------------

// Small, so the overflow comes quickly; roomier under ASan, whose frames are larger.
#ifdef TENDRIL_ASAN
constexpr std::size_t kSmallStack = 256 * 1024;
#else
constexpr std::size_t kSmallStack = 64 * 1024;
#endif

TENDRIL_CHILD("http-handler-stack-overflow") {
    SchedulerOptions o;
    o.stack.size = kSmallStack;  // the server's connection fibers get the scheduler's default
    run([] {
        HTTPServer<FaultHandler> server(BaseHTTPServer::bind(*SocketAddress::ip("127.0.0.1", 0)), nullptr,
                                        quiet_config());
        auto srv = go([&] { server.serve_forever(); }, FiberOptions{"test-server"});
        Client c(server.server_address());
        auto ok = c.get("/small", Deadline::after(5s));
        std::printf("small: %d\n", ok ? ok->status : -1);
        std::fflush(stdout);
        auto r = c.get("/recurse", Deadline::after(5s));  // the process ends in here
        std::printf("recurse came back: %d\n", r ? r->status : -1);
        server.shutdown(Deadline::after(1s));
        (void)srv.join();
    }, o);
    return 0;
}

TEST_CASE("a handler that overflows its stack ends the process with a report naming its fiber") {
    auto r = test::run_child("http-handler-stack-overflow");
    INFO("stderr: " << r.err.substr(0, 2000));
    INFO("stdout: " << r.out);
    CHECK(r.out.find("small: 200") != std::string::npos);          // served normally before
    CHECK(r.out.find("recurse came back") == std::string::npos);   // never carried on corrupted
    CHECK(r.signal == SIGABRT);
    CHECK(r.err.find("fiber stack overflow in fiber 'http-conn'") != std::string::npos);
    CHECK(r.err.find(std::to_string(kSmallStack / 1024) + " KiB") != std::string::npos);
}

// --- SIGPIPE -----------------------------------------------------------------------------

TENDRIL_CHILD("http-sendfile-sigpipe") {
    ::signal(SIGPIPE, SIG_DFL);  // what a program gets unless it says otherwise
    g_file_size = 16u << 20;
    g_file_fd = pattern_file(g_file_size);
    if (g_file_fd < 0) return 4;
    int served = 0;
    run([&] {
        HTTPServer<FaultHandler> server(BaseHTTPServer::bind(*SocketAddress::ip("127.0.0.1", 0)), nullptr,
                                        quiet_config());
        SocketAddress at = server.server_address();
        auto srv = go([&] { server.serve_forever(); }, FiberOptions{"test-server"});
        const std::string req = "GET /file HTTP/1.1\r\nHost: x\r\n\r\n";
        for (int i = 0; i < 30; ++i) {
            Deadline d = Deadline::after(5s);
            auto s = Socket::connect(at, d);
            if (!s.ok() || !s->write_all(req, d).ok()) {
                std::printf("client %d: connect or write failed\n", i);
                continue;
            }
            s->set_buffer_sizes(0, 16 * 1024);
            if (i % 3 == 1) {  // read a little of the response first
                char buf[4096];
                (void)s->read_some(buf, sizeof buf, d);
            }
            if (i % 3 == 2) {  // a reset instead of a FIN
                linger lg{1, 0};
                ::setsockopt(s->native(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            }
            s->close();  // i % 3 == 0: gone before the answer even started
            (void)sleep_for(5ms);  // the server writes into the dead connection meanwhile
        }
        Client c(at);
        auto ok = c.get("/small", Deadline::after(5s));
        if (ok && ok->status == 200) served = 1;
        server.shutdown(Deadline::after(2s));
        (void)srv.join();
    });
    std::printf("survived, served %d\n", served);
    return served == 1 ? 0 : 3;
}

TEST_CASE("sendfile into a connection the client closed or reset does not kill the server with SIGPIPE") {
    auto r = test::run_child("http-sendfile-sigpipe");
    INFO("stderr: " << r.err.substr(0, 2000));
    INFO("stdout: " << r.out);
    if (r.signal == SIGPIPE)
        FAIL_CHECK("killed by SIGPIPE: Socket::sendfile (Linux sendfile(2) has no MSG_NOSIGNAL) raised it "
                   "when the peer had gone");
    CHECK(r.signal == 0);
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("survived, served 1") != std::string::npos);
}

// --- EINTR -------------------------------------------------------------------------------

TEST_CASE("socket I/O and sleeps under a storm of signals without SA_RESTART: every byte arrives") {
    constexpr std::uint64_t kBytes = 48u << 20;
    g_signals = 0;
    std::uint64_t received = 0;
    long long first_bad = -1;
    std::string reply;
    int short_sleeps = 0;
    {
        SignalStorm storm(SIGUSR1);
        run([&] {
            auto l = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
            REQUIRE(l.ok());
            SocketAddress at = l->local_address();
            WaitGroup wg;
            wg.add(3);
            go([&] {  // the receiving end: checks every byte
                auto s = l->accept(Deadline::after(10s));
                REQUIRE(s.ok());
                s->set_buffer_sizes(64 * 1024, 64 * 1024);  // many waits for readiness
                std::string buf(64 * 1024, '\0');
                Deadline d = Deadline::after(30s);
                for (;;) {
                    IoResult r = s->read_some(buf.data(), buf.size(), d);
                    if (!r) {
                        CHECK(r.status == Status::eof);
                        break;
                    }
                    for (std::size_t k = 0; k < r.n && first_bad < 0; ++k)
                        if (static_cast<unsigned char>(buf[k]) != pattern(received + k))
                            first_bad = static_cast<long long>(received + k);
                    received += r.n;
                }
                std::string done = std::to_string(received);
                CHECK(s->write_all(done, d).ok());
                wg.done();
            }, FiberOptions{"receiver"});
            go([&] {  // the sending end
                Deadline d = Deadline::after(30s);
                auto s = Socket::connect(at, d);
                REQUIRE(s.ok());
                s->set_buffer_sizes(64 * 1024, 64 * 1024);
                for (std::uint64_t at_byte = 0; at_byte < kBytes; at_byte += 1 << 20) {
                    std::string piece = pattern_bytes(at_byte, 1 << 20);
                    IoResult w = s->write_all(piece, d);
                    REQUIRE(w.ok());
                }
                REQUIRE(s->shutdown_write() == Status::ok);
                char buf[64];
                for (;;) {
                    IoResult r = s->read_some(buf, sizeof buf, d);
                    if (!r) break;
                    reply.append(buf, r.n);
                }
                wg.done();
            }, FiberOptions{"sender"});
            go([&] {  // sleeps are not cut short
                for (int i = 0; i < 20; ++i) {
                    auto t0 = Clock::now();
                    REQUIRE(sleep_for(10ms) == Status::ok);
                    if (Clock::now() - t0 < 10ms) ++short_sleeps;
                }
                wg.done();
            }, FiberOptions{"sleeper"});
            REQUIRE(wg.wait(Deadline::after(60s)) == Status::ok);
        });
    }
    MESSAGE(g_signals.load() << " signals delivered during " << (kBytes >> 20) << " MiB over loopback");
    CHECK(g_signals.load() > 50);
    CHECK(received == kBytes);
    CHECK(first_bad == -1);
    CHECK(reply == std::to_string(kBytes));
    CHECK(short_sleeps == 0);
}

TEST_CASE("HTTP uploads and sendfile downloads under a storm of signals without SA_RESTART") {
    g_file_size = (24u << 20) + 12345;
    g_file_fd = pattern_file(g_file_size);
    REQUIRE(g_file_fd >= 0);
    g_signals = 0;
    {
        SignalStorm storm(SIGUSR1);
        with_server<FaultHandler>(quiet_config(), [](SocketAddress at, BaseHTTPServer&) {
            Client c(at);
            for (int round = 0; round < 3; ++round) {
                Deadline d = Deadline::after(30s);
                // Upload, streamed, in pieces.
                std::uint64_t n = (8u << 20) + 777 * round;
                Request req;
                req.method = "POST";
                req.target = "/check";
                bool sent = c.send_head(req, n, false, d) == Status::ok;
                for (std::uint64_t at_byte = 0; sent && at_byte < n; at_byte += 300000)
                    sent = c.write_body(pattern_bytes(at_byte, std::min<std::uint64_t>(300000, n - at_byte)), d) ==
                           Status::ok;
                sent = sent && c.finish_body(d) == Status::ok;
                CHECK(sent);
                auto head = c.read_head(d);
                CHECK(head.ok());
                CHECK(head->status == 200);
                auto body = c.read_body_all(d);
                CHECK(body.ok());
                CHECK(*body == std::to_string(n) + " -1");
                if (!sent || !head.ok() || !body.ok()) return;
                // Download by sendfile, checked byte by byte.
                auto r = c.get("/file", d);
                CHECK(r.ok());
                CHECK(r->status == 200);
                CHECK(r->body.size() == g_file_size);
                long long bad = -1;
                for (std::size_t k = 0; k < r->body.size() && bad < 0; ++k)
                    if (static_cast<unsigned char>(r->body[k]) != pattern(k)) bad = static_cast<long long>(k);
                CHECK(bad == -1);
            }
        });
    }
    ::close(g_file_fd);
    g_file_fd = -1;
    MESSAGE(g_signals.load() << " signals delivered during 3 uploads and 3 downloads");
    CHECK(g_signals.load() > 50);
}

// --- the timeouts that bound hostile clients ---------------------------------------------------

TEST_CASE("a client that never reads its response is cut off after write_timeout; others are served meanwhile") {
    ServerConfig cfg;
    cfg.write_timeout = 300ms;
    with_server<FaultHandler>(cfg, [](SocketAddress at, BaseHTTPServer& server) {
        Deadline d = Deadline::after(10s);
        auto s = Socket::connect(at, d);
        REQUIRE(s.ok());
        s->set_buffer_sizes(0, 16 * 1024);
        REQUIRE(s->write_all(std::string_view("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"), d).ok());
        auto t0 = Clock::now();
        (void)sleep_for(50ms);
        CHECK(server.connections() == 1);
        Client c(at);
        auto ok = c.get("/small", d);  // not held up by the stuck writer
        CHECK(ok.ok());
        CHECK(ok->body == "ok");
        CHECK(Clock::now() - t0 < 300ms);
        c.close();
        while (server.connections() > 0 && Clock::now() - t0 < 5s) (void)sleep_for(10ms);
        auto took = Clock::now() - t0;
        CHECK(server.connections() == 0);
        CHECK(took >= 250ms);
        CHECK(took < 3s);
    });
}

// --- backpressure ------------------------------------------------------------------------

namespace {

// 8 MiB in 1000-byte wfile.write() calls: chunked at /chunked, with a
// Content-Length at /fixed. Counts what it has handed to wfile, before each
// write (so the piece a parked write holds is counted as handed).
constexpr std::size_t kPiece = 1000;
constexpr std::size_t kPieces = 8 * 1024;
std::atomic<std::uint64_t> g_handed{0};
std::atomic<bool> g_finished{false};
std::atomic<int> g_writer_fd{-1};

class SmallWrites : public BaseHTTPRequestHandler {
public:
    void do_GET() override {
        g_writer_fd = connection().native();
        send_response(200);
        if (path == "/fixed") send_header("Content-Length", std::to_string(kPiece * kPieces));
        end_headers();
        std::string piece(kPiece, 's');
        for (std::size_t i = 0; i < kPieces; ++i) {
            g_handed += kPiece;
            wfile.write(piece);
        }
        g_finished = true;
    }
};

// Bytes the kernel holds of one connection: in the writer's send queue
// (unacknowledged) and in the reader's receive queue (unread).
long kernel_bytes(int writer_fd, int reader_fd) {
    int out = 0, in = 0;
    if (::ioctl(writer_fd, TIOCOUTQ, &out) != 0 || ::ioctl(reader_fd, FIONREAD, &in) != 0) return -1;
    return static_cast<long>(out) + in;
}

}  // namespace

TEST_CASE("a handler writing a large body in small writes to a client that does not read parks in its write, "
          "with at most output_buffer_limit bytes buffered") {
    struct Case {
        std::size_t limit;
        const char* path;
    };
    for (Case c : {Case{16 * 1024, "/chunked"}, Case{16 * 1024, "/fixed"}, Case{4 * 1024, "/chunked"},
                   Case{64 * 1024, "/fixed"}}) {
        CAPTURE(c.limit);
        std::string path = c.path;
        CAPTURE(path);
        g_handed = 0;
        g_finished = false;
        g_writer_fd = -1;
        ServerConfig cfg;
        cfg.output_buffer_limit = c.limit;
        CHECK(ServerConfig{}.output_buffer_limit == 16 * 1024);  // the default this test is about
        with_server<SmallWrites>(cfg, [&](SocketAddress at, BaseHTTPServer& server) {
            Deadline d = Deadline::after(20s);
            auto s = Socket::connect(at, d);
            REQUIRE(s.ok());
            // (Its receive buffer is left alone: shrinking it after the connect
            // makes Linux drop data it has already advertised room for, and the
            // retransmissions stall the reading at the end for seconds.)
            REQUIRE(s->write_all("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n", d).ok());
            // Until the handler stops getting anywhere: every buffer on the way is full.
            std::uint64_t last = 0;
            for (int still = 0; still < 5 && !d.expired();) {
                (void)sleep_for(20ms);
                std::uint64_t now = g_handed.load();
                still = now == last ? still + 1 : 0;
                last = now;
            }
            CHECK_FALSE(g_finished.load());  // parked, not done: it went no faster than the client
            CHECK(server.connections() == 1);
            REQUIRE(g_writer_fd.load() >= 0);
            long in_kernel = kernel_bytes(g_writer_fd, s->native());
            REQUIRE(in_kernel >= 0);
            // What the handler made (its body bytes, the chunk framing) less what
            // the kernel holds is what this process holds: the bytes in out_
            // and the piece the parked write is sending, less the response head
            // (in the kernel, not counted as made).
            std::uint64_t handed = g_handed.load();
            long framing = path == "/chunked" ? static_cast<long>(handed / kPiece) * 7 : 0;
            long held = static_cast<long>(handed) + framing - in_kernel;
            MESSAGE(path << ", limit " << c.limit << ": handed " << handed << " bytes, kernel holds " << in_kernel
                           << ", this process " << held << " (plus the head)");
            CHECK(handed < kPiece * kPieces);
            CHECK(held <= static_cast<long>(c.limit + kPiece + 7));
            CHECK(held > -1024);  // the accounting adds up (only the head is not counted as made)
            // The client reads at last: the whole body arrives, intact.
            auto rs = read_responses(*s, 1, d);
            REQUIRE(rs.size() == 1);
            CHECK(rs[0].status == 200);
            CHECK(rs[0].body.size() == kPiece * kPieces);
            CHECK(rs[0].body.find_first_not_of('s') == std::string::npos);
            CHECK(g_finished.load());
        });
    }
}

TEST_CASE("an upload that stalls mid-body gets 408 after body_timeout and its connection is closed") {
    ServerConfig cfg;
    cfg.body_timeout = 300ms;
    with_server<FaultHandler>(cfg, [](SocketAddress at, BaseHTTPServer& server) {
        Deadline d = Deadline::after(10s);
        auto s = Socket::connect(at, d);
        REQUIRE(s.ok());
        std::string head = "POST /check HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n";
        CHECK(s->write_all(head + pattern_bytes(0, 5000), d).ok());
        auto t0 = Clock::now();
        auto rs = read_responses(*s, 1, d);
        auto took = Clock::now() - t0;
        // The handler's read times out; the server answers 408 (as for a head that
        // stalls) and closes. (The 408 was once built and logged, then dropped unsent.)
        CHECK(rs.size() == 1);
        if (!rs.empty()) CHECK(rs[0].status == 408);
        CHECK(closed_by_peer(*s, d));
        CHECK(took >= 250ms);
        CHECK(took < 3s);
        while (server.connections() > 0 && Clock::now() - t0 < 5s) (void)sleep_for(10ms);
        CHECK(server.connections() == 0);
    });
}

TEST_CASE("an idle keep-alive connection is closed after idle_timeout") {
    ServerConfig cfg;
    cfg.idle_timeout = 300ms;
    with_server<FaultHandler>(cfg, [](SocketAddress at, BaseHTTPServer& server) {
        Deadline d = Deadline::after(10s);
        auto s = Socket::connect(at, d);
        REQUIRE(s.ok());
        REQUIRE(s->write_all(std::string_view("GET /small HTTP/1.1\r\nHost: x\r\n\r\n"), d).ok());
        auto rs = read_responses(*s, 1, d);
        CHECK(rs.size() == 1);
        if (!rs.empty()) CHECK(rs[0].status == 200);
        auto t0 = Clock::now();
        CHECK(closed_by_peer(*s, d));
        auto took = Clock::now() - t0;
        CHECK(took >= 250ms);
        CHECK(took < 3s);
        while (server.connections() > 0 && Clock::now() - t0 < 5s) (void)sleep_for(10ms);
        CHECK(server.connections() == 0);
    });
}
