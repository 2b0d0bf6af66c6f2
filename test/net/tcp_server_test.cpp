// TcpServer: per-connection fibers, graceful shutdown with a grace period and
// cancellation, surviving descriptor exhaustion (EMFILE) at low CPU, and the
// connection limit (the accept loop pauses at it, shared across servers and
// threads).
#include <doctest/doctest.h>

#include "../support.hpp"

#include <tendril/net/listener.hpp>
#include <tendril/net/socket.hpp>
#include <tendril/net/tcp_server.hpp>
#include <tendril/sched/event.hpp>
#include <tendril/sched/threads.hpp>
#include <tendril/sched/wait_group.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <string>
#include <vector>

using namespace tendril;

TEST_CASE("shutdown lets connections finish within the grace period") {
    run([] {
        int finished = 0;
        auto l = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
        REQUIRE(l.ok());
        TcpServer server(std::move(l.value), [&](Socket& s, const SocketAddress&) {
            REQUIRE(sleep_for(20ms) == Status::ok);  // a request in flight
            REQUIRE(s.write_all("done").ok());
            ++finished;
        });
        auto at = server.local_address();
        auto srv = go([&] { server.serve_forever(); });
        auto c = Socket::connect(at, Deadline::after(1s));
        REQUIRE(c.ok());
        REQUIRE(sleep_for(5ms) == Status::ok);
        CHECK(server.connections() == 1);
        server.shutdown(Deadline::after(2s));
        CHECK(finished == 1);
        CHECK(server.connections() == 0);
        (void)srv.join();
        // No longer accepting.
        auto late = Socket::connect(at, Deadline::after(200ms));
        CHECK_FALSE(late.ok());
    });
}

TEST_CASE("shutdown cancels connections still open after the grace period") {
    run([] {
        Status seen = Status::ok;
        auto l = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
        REQUIRE(l.ok());
        TcpServer server(std::move(l.value), [&](Socket& s, const SocketAddress&) {
            char c;
            seen = s.read_some(&c, 1).status;  // a client that never sends
        });
        auto srv = go([&] { server.serve_forever(); });
        auto c = Socket::connect(server.local_address(), Deadline::after(1s));
        REQUIRE(c.ok());
        REQUIRE(sleep_for(5ms) == Status::ok);
        auto t0 = Clock::now();
        server.shutdown(Deadline::after(30ms));
        CHECK(Clock::now() - t0 >= 30ms);
        CHECK(seen == Status::cancelled);
        (void)srv.join();
    });
}

namespace {

double cpu_seconds(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto close_paren = s.rfind(')');
    std::istringstream in(s.substr(close_paren + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15; ++i) {
        in >> field;
        if (i == 14) utime = std::stod(field);
        if (i == 15) stime = std::stod(field);
    }
    return (utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

int blocking_connect(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(fd);
        return -1;
    }
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

// "echo one line back" over a blocking socket; true if it worked.
bool ping(int fd) {
    if (::write(fd, "ping\n", 5) != 5) return false;
    char buf[8];
    return ::read(fd, buf, sizeof buf) == 5;
}

}  // namespace

TENDRIL_CHILD("emfile-server") {
    rlimit lim{48, 48};
    ::setrlimit(RLIMIT_NOFILE, &lim);
    run([] {
        auto l = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
        if (!l) return;
        TcpServer server(std::move(l.value), [](Socket& s, const SocketAddress&) {
            char buf[64];
            for (;;) {
                IoResult r = s.read_some(buf, sizeof buf, Deadline::after(20s));
                if (!r || !s.write_all(buf, r.n)) return;
            }
        });
        std::printf("%u\n", server.local_address().port());
        std::fflush(stdout);
        auto stop = go([&] {
            char c;
            PollFd in(::dup(0));
            (void)in.read(&c, 1);  // the parent closes our stdin to stop us
            server.shutdown(Deadline::after(1s));
        });
        server.serve_forever();
    });
    return 0;
}

TEST_CASE("EMFILE: while descriptors are exhausted the server sheds connections at low CPU, "
          "then serves again") {
    int in[2], out[2];
    REQUIRE(::pipe(in) == 0);
    REQUIRE(::pipe(out) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::close(in[1]);
        ::close(out[0]);
        char exe[4096];
        ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
        exe[n] = 0;
        const char* argv[] = {exe, "--child", "emfile-server", nullptr};
        ::execv(exe, const_cast<char**>(argv));
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    char buf[32] = {};
    REQUIRE(::read(out[0], buf, sizeof buf - 1) > 0);
    auto port = static_cast<std::uint16_t>(std::stoi(buf));

    // Fill every descriptor the server has, and then some.
    std::vector<int> clients;
    int served = 0;
    for (int i = 0; i < 80; ++i) {
        int fd = blocking_connect(port);
        if (fd < 0) continue;
        clients.push_back(fd);
        if (ping(fd)) ++served;
    }
    CHECK(served > 20);
    CHECK(served < 48);  // the rest were shed or refused
    // While exhausted, more connection attempts keep coming; CPU must stay low.
    double cpu0 = cpu_seconds(pid);
    auto t0 = Clock::now();
    int attempts = 0;
    while (Clock::now() - t0 < 1s) {
        int fd = blocking_connect(port);
        if (fd >= 0) {
            ::close(fd);
            ++attempts;
        }
        ::usleep(2000);
    }
    double cpu = cpu_seconds(pid) - cpu0;
    MESSAGE("server CPU while exhausted: " << cpu << " s in 1 s of wall time, " << attempts
                                           << " connection attempts shed");
    CHECK(cpu < 0.3);  // a spinning accept loop would use ~1.0
    // Free descriptors: the server serves new clients again.
    for (int fd : clients) ::close(fd);
    ::usleep(100000);
    int fd = blocking_connect(port);
    REQUIRE(fd >= 0);
    CHECK(ping(fd));
    ::close(fd);
    ::close(in[1]);  // stop the child
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status));
    ::close(out[0]);
}

// --- the connection limit ----------------------------------------------------------------

namespace {

// Answers every line with the same line, until the client closes.
void echo_lines(Socket& s, const SocketAddress&) {
    char buf[64];
    for (;;) {
        IoResult r = s.read_some(buf, sizeof buf, Deadline::after(20s));
        if (!r || !s.write_all(buf, r.n)) return;
    }
}

// One echo exchange; true if the answer came back before the deadline.
bool echo(Socket& s, Deadline d) {
    if (!s.write_all(std::string_view("ping\n"), d).ok()) return false;
    char buf[8];
    return s.read_exact(buf, 5, d).ok() && std::string_view(buf, 5) == "ping\n";
}

Socket connected(const SocketAddress& at, Deadline d) {
    auto c = Socket::connect(at, d);
    REQUIRE(c.ok());
    return std::move(c.value);
}

}  // namespace

TEST_CASE("max_connections: at the limit the accept loop pauses, the next client waits in the backlog, "
          "and is served as soon as a connection closes") {
    run([] {
        auto l = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
        REQUIRE(l.ok());
        TcpServerOptions options;
        options.max_connections = 3;
        TcpServer server(std::move(l.value), echo_lines, options);
        REQUIRE(server.connection_limit());
        ConnectionLimit& limit = *server.connection_limit();
        auto at = server.local_address();
        auto srv = go([&] { server.serve_forever(); });
        Deadline d = Deadline::after(10s);

        std::vector<Socket> held;
        for (int i = 0; i < 3; ++i) {
            held.push_back(connected(at, d));
            CHECK(echo(held.back(), d));
        }
        CHECK(server.accepted() == 3);
        CHECK(limit.open() == 3);
        CHECK(limit.pauses() == 0);  // no client has waited yet

        // The 4th: its connect completes (the kernel's backlog), its request gets
        // nothing while the three stay open.
        Socket fourth = connected(at, d);
        REQUIRE(fourth.write_all(std::string_view("ping\n"), d).ok());
        std::uint64_t switches0 = Scheduler::current()->counters().switches;
        char buf[8];
        IoResult r = fourth.read_some(buf, sizeof buf, Deadline::after(300ms));
        std::uint64_t switches = Scheduler::current()->counters().switches - switches0;
        CHECK(r.status == Status::timeout);
        // Not accepted (and closed, or accepted and left unserved): the loop
        // stopped calling accept, and it waited once instead of spinning --
        // parked on its event, it costs no context switch (this fiber's own
        // sleep and the log writer's line are the few counted here).
        CHECK(server.accepted() == 3);
        CHECK(server.connections() == 3);
        CHECK(limit.open() == 3);
        CHECK(limit.pauses() == 1);
        MESSAGE("context switches in 300 ms of pause: " << switches);
        CHECK(switches < 20);
        // The connections held keep their service.
        CHECK(echo(held[0], d));
        CHECK(echo(held[2], d));

        // One closes: the waiting client is accepted and answered.
        held[1].close();
        REQUIRE(fourth.read_exact(buf, 5, d).ok());
        CHECK(std::string_view(buf, 5) == "ping\n");
        CHECK(server.accepted() == 4);
        CHECK(limit.open() == 3);
        CHECK(limit.pauses() == 1);

        // A 5th waits again; shutdown wakes the paused loop and leaves it
        // unaccepted (the kernel resets it when the listener closes).
        Socket fifth = connected(at, d);
        while (limit.pauses() < 2 && !d.expired()) (void)sleep_for(5ms);
        CHECK(limit.pauses() == 2);
        server.shutdown(Deadline::after(100ms));
        (void)srv.join();
        CHECK(server.accepted() == 4);
        CHECK(limit.open() == 0);  // every slot went back with its connection
    });
}

// Two pauses in a row, the second within 10 s of the first: the log has one
// "not accepting" line and one "accepting again" line, not two of each.
TENDRIL_CHILD("connection-limit-log") {
    run([] {
        auto l = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
        if (!l) return;
        TcpServerOptions options;
        options.connection_limit = std::make_shared<ConnectionLimit>(1, "echo", "--max-connections");
        TcpServer server(std::move(l.value), echo_lines, options);
        ConnectionLimit& limit = *server.connection_limit();
        auto srv = go([&] { server.serve_forever(); });
        Deadline d = Deadline::after(10s);
        auto first = Socket::connect(server.local_address(), d);  // (no REQUIRE: no doctest in a child)
        if (!first || !echo(first.value, d)) return;
        Socket holder = std::move(first.value);
        for (int round = 1; round <= 2; ++round) {
            auto c = Socket::connect(server.local_address(), d);
            if (!c) return;
            Socket next = std::move(c.value);
            if (!next.write_all(std::string_view("ping\n"), d).ok()) return;
            while (limit.pauses() < static_cast<std::uint64_t>(round) && !d.expired()) (void)sleep_for(2ms);
            holder.close();  // lets `next` in
            char buf[8];
            if (!next.read_exact(buf, 5, d).ok()) return;
            holder = std::move(next);
        }
        std::printf("pauses %llu accepted %llu\n", static_cast<unsigned long long>(limit.pauses()),
                    static_cast<unsigned long long>(server.accepted()));
        std::fflush(stdout);
        server.shutdown(Deadline::after(100ms));
        (void)srv.join();
    });
    return 0;
}

TEST_CASE("the connection limit's log: one line when accepting pauses and one when it resumes, "
          "and a pause soon after is counted, not logged") {
    auto r = test::run_child("connection-limit-log");
    CHECK(r.exit_code == 0);
    CHECK(r.out == "pauses 2 accepted 3\n");
    auto count = [&](std::string_view what) {
        std::size_t n = 0;
        for (std::size_t at = r.err.find(what); at != std::string::npos; at = r.err.find(what, at + 1)) ++n;
        return n;
    };
    CHECK(count("echo: 1 connection open (--max-connections 1): not accepting until one closes") == 1);
    CHECK(count("not accepting") == 1);
    CHECK(count("echo: accepting connections again after ") == 1);
}

TEST_CASE("a ConnectionLimit shared by the servers of two threads: one limit for both, and a close on "
          "one thread resumes the other's paused accept loop") {
    auto limit = std::make_shared<ConnectionLimit>(2);
    std::unique_ptr<TcpServer> remote;  // thread 1's
    SocketAddress remote_at;
    Event remote_ready;
    run_threads(2, [&](unsigned index) {
        if (index == 1) {
            auto l = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
            REQUIRE(l.ok());
            TcpServerOptions options;
            options.connection_limit = limit;
            remote = std::make_unique<TcpServer>(std::move(l.value), echo_lines, options);
            remote_at = remote->local_address();
            remote_ready.set();
            remote->serve_forever();
            return;
        }
        auto l = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
        REQUIRE(l.ok());
        TcpServerOptions options;
        options.connection_limit = limit;
        TcpServer local(std::move(l.value), echo_lines, options);
        auto srv = go([&] { local.serve_forever(); });
        REQUIRE(remote_ready.wait(Deadline::after(5s)) == Status::ok);
        Deadline d = Deadline::after(10s);

        Socket on_remote = connected(remote_at, d);
        CHECK(echo(on_remote, d));
        Socket on_local = connected(local.local_address(), d);
        CHECK(echo(on_local, d));
        CHECK(limit->open() == 2);
        // The limit is the two servers' together: a second client of this
        // thread's server waits, though this server has only one connection.
        Socket waiting = connected(local.local_address(), d);
        REQUIRE(waiting.write_all(std::string_view("ping\n"), d).ok());
        char buf[8];
        CHECK(waiting.read_some(buf, sizeof buf, Deadline::after(200ms)).status == Status::timeout);
        CHECK(local.accepted() == 1);
        CHECK(limit->pauses() == 1);
        // Closing the other thread's connection frees the slot for this one.
        on_remote.close();
        REQUIRE(waiting.read_exact(buf, 5, d).ok());
        CHECK(std::string_view(buf, 5) == "ping\n");
        CHECK(local.accepted() == 2);
        CHECK(limit->open() == 2);

        on_local.close();
        waiting.close();
        local.shutdown(Deadline::after(1s));
        (void)srv.join();
        ThreadGroup::current()->post_to(1, [&] { remote->shutdown(Deadline::after(1s)); });
    });
    CHECK(remote->accepted() == 1);
    CHECK(limit->open() == 0);
    remote.reset();
}
