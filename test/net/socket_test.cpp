// Sockets end to end over loopback: an echo server with 1,000 concurrent
// clients, deadlines on read and connect, IPv6 (skipped, and counted as
// skipped, where ::1 is absent) and Unix sockets, sendfile,
// writes from a buffer on a compacted stack, no SIGPIPE.
#include <doctest/doctest.h>

#include "../support.hpp"

#include <tendril/core/stack_pool.hpp>
#include <tendril/net/listener.hpp>
#include <tendril/net/socket.hpp>
#include <tendril/net/tcp_server.hpp>
#include <tendril/sched/event.hpp>
#include <tendril/sched/wait_group.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

using namespace tendril;

namespace {

SocketAddress loopback(const char* host = "127.0.0.1") { return *SocketAddress::ip(host, 0); }

// An echo server: serves until `stop` is set.
struct EchoServer {
    TcpServer server;
    explicit EchoServer(SocketAddress at)
        : server(std::move(*Listener::listen(at)), [](Socket& s, const SocketAddress&) {
              char buf[4096];
              for (;;) {
                  IoResult r = s.read_some(buf, sizeof buf, Deadline::after(10s));
                  if (!r) return;
                  if (!s.write_all(buf, r.n)) return;
              }
          }) {}
};

std::string pattern(std::size_t n, unsigned seed) {
    std::string s(n, 0);
    std::mt19937 rng(seed);
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
}

}  // namespace

TEST_CASE("echo: 1,000 concurrent client fibers, every byte verified") {
    constexpr int N = 1000;
    int verified = 0;
    run([&] {
        EchoServer echo(loopback());
        SocketAddress at = echo.server.local_address();
        auto srv = go([&] { echo.server.serve_forever(); }, FiberOptions{"echo-server"});
        WaitGroup wg;
        for (int i = 0; i < N; ++i) {
            wg.add();
            go([&, i] {
                auto c = Socket::connect(at, Deadline::after(10s));
                REQUIRE(c.ok());
                std::string msg = pattern(1000 + (i % 7) * 3000, i);
                std::string got(msg.size(), 0);
                auto w = go([&] { REQUIRE(c->write_all(msg, Deadline::after(10s)).ok()); });
                IoResult r = c->read_exact(got.data(), got.size(), Deadline::after(10s));
                REQUIRE(r.ok());
                (void)w.join();
                if (got == msg) ++verified;
                wg.done();
            });
        }
        REQUIRE(wg.wait(Deadline::after(30s)) == Status::ok);
        echo.server.shutdown();
        (void)srv.join();
    });
    CHECK(verified == N);
}

TEST_CASE("a read deadline expires when the peer never writes") {
    run([] {
        auto l = Listener::listen(loopback());
        REQUIRE(l.ok());
        auto c = Socket::connect(l->local_address());
        REQUIRE(c.ok());
        auto a = l->accept(Deadline::after(1s));
        REQUIRE(a.ok());
        char buf[16];
        auto t0 = Clock::now();
        IoResult r = a->read_some(buf, sizeof buf, Deadline::after(30ms));
        CHECK(r.status == Status::timeout);
        CHECK(Clock::now() - t0 >= 30ms);
        // Then the data arrives and the same socket reads it.
        REQUIRE(c->write_all("late").ok());
        r = a->read_some(buf, sizeof buf, Deadline::after(1s));
        REQUIRE(r.ok());
        CHECK(std::string(buf, r.n) == "late");
    });
}

TEST_CASE("a connect deadline expires against a listener whose backlog is full") {
    run([] {
        // Backlog 0 and nobody accepting: a few connections fill the queue and
        // further SYNs are dropped, so connect() hangs until its deadline.
        ListenOptions lo;
        lo.backlog = 0;
        auto l = Listener::listen(loopback(), lo);
        REQUIRE(l.ok());
        std::vector<Socket> held;
        Status last = Status::ok;
        for (int i = 0; i < 16 && last == Status::ok; ++i) {
            auto c = Socket::connect(l->local_address(), Deadline::after(100ms));
            last = c.status;
            if (c) held.push_back(std::move(c.value));
        }
        CHECK(last == Status::timeout);
        CHECK(held.size() >= 1);
    });
}

TEST_CASE("accept deadline, and closing the listener stops an accept loop") {
    run([] {
        auto l = Listener::listen(loopback());
        REQUIRE(l.ok());
        CHECK(l->accept(Deadline::after(10ms)).status == Status::timeout);
        Status seen = Status::ok;
        auto h = go([&] { seen = l->accept().status; });
        yield();
        l->close();
        (void)h.join();
        CHECK(seen == Status::closed);
    });
}

static bool have_ipv6_loopback() {
    int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_loopback;
    bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(fd);
    return ok;
}

TEST_CASE("IPv6 loopback sockets" *
          doctest::skip(test::skip_unless(have_ipv6_loopback(), "IPv6 loopback sockets",
                                          "no IPv6 loopback (::1) on this machine"))) {
    run([] {
        auto l6 = Listener::listen(loopback("::1"));
        REQUIRE(l6.ok());
        auto c = Socket::connect(l6->local_address(), Deadline::after(1s));
        REQUIRE(c.ok());
        auto a = l6->accept(Deadline::after(1s));
        REQUIRE(a.ok());
        CHECK(a->peer_address().host() == "::1");
        CHECK(l6->local_address().to_string().rfind("[::1]:", 0) == 0);
        REQUIRE(c->write_all("over ipv6").ok());
        char buf[32];
        IoResult r = a->read_some(buf, sizeof buf, Deadline::after(1s));
        REQUIRE(r.ok());
        CHECK(std::string(buf, r.n) == "over ipv6");
    });
}

TEST_CASE("Unix-domain sockets") {
    run([] {
        std::string path = "/tmp/tendril-test-" + std::to_string(::getpid()) + ".sock";
        ::unlink(path.c_str());
        auto lu = Listener::listen(*SocketAddress::unix_path(path));
        REQUIRE(lu.ok());
        auto c = Socket::connect(*SocketAddress::unix_path(path), Deadline::after(1s));
        REQUIRE(c.ok());
        auto a = lu->accept(Deadline::after(1s));
        REQUIRE(a.ok());
        REQUIRE(c->write_all("over unix").ok());
        char buf[32];
        IoResult r = a->read_some(buf, sizeof buf, Deadline::after(1s));
        REQUIRE(r.ok());
        CHECK(std::string(buf, r.n) == "over unix");
        ::unlink(path.c_str());
    });
}

TEST_CASE("writing to a peer that left returns closed, and SIGPIPE does not kill us") {
    run([] {
        auto [a, b] = Socket::pair();
        b.close();
        std::string data(1 << 20, 'x');
        IoResult r = a.write_all(data, Deadline::after(1s));
        CHECK(r.status == Status::closed);
        CHECK(r.error == EPIPE);
    });
}

TEST_CASE("sendfile sends a file's bytes without a user buffer") {
    char path[] = "/tmp/tendril-sendfile-XXXXXX";
    int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    std::string content = pattern(3 * 1024 * 1024 + 17, 9);
    REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
    run([&] {
        auto [a, b] = Socket::pair();
        std::string got;
        auto reader = go([&, &b = b] {
            char buf[65536];
            for (;;) {
                IoResult r = b.read_some(buf, sizeof buf, Deadline::after(5s));
                if (!r) break;
                got.append(buf, r.n);
            }
        });
        IoResult r = a.sendfile(fd, 1000, content.size() - 1000, Deadline::after(5s));
        CHECK(r.ok());
        CHECK(r.n == content.size() - 1000);
        a.close();
        (void)reader.join();
        CHECK(got == content.substr(1000));
    });
    ::close(fd);
    ::unlink(path);
}

TEST_CASE("a write from a buffer on a compacted stack restores it and succeeds (EFAULT path)") {
    SchedulerOptions o;
    o.reclaim_after = 1ms;
    Scheduler s(o);
    std::string got;
    s.go([&] {
        // Sockets on the heap, pointer and length by value: the writer
        // touches nothing on the owner's compacted stack in user space, so
        // the kernel meets it first (EFAULT) and the I/O layer restores it.
        auto sockets = std::make_unique<std::pair<Socket, Socket>>(Socket::pair());
        char message[64];
        int len = std::snprintf(message, sizeof message, "bytes from a parked fiber's frame");
        WaitGroup wg;
        wg.add();
        go([sock = &sockets->first, msg = &message[0], len, wg = &wg] {
            REQUIRE(sleep_for(30ms) == Status::ok);  // the owner is compacted by now
            CHECK(StackPool::for_thread(StackOptions{}).stats().compacted == 1);
            CHECK(sock->write_all(msg, static_cast<std::size_t>(len)).ok());
            CHECK(StackPool::for_thread(StackOptions{}).stats().compacted == 0);
            wg->done();
        });
        REQUIRE(wg.wait() == Status::ok);
        char buf[64];
        IoResult r = sockets->second.read_some(buf, sizeof buf, Deadline::after(1s));
        CHECK(r.ok());
        got.assign(buf, r.n);
    });
    s.run();
    CHECK(got == "bytes from a parked fiber's frame");
}
