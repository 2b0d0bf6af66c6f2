// TcpServer: per-connection fibers, graceful shutdown with a grace period and
// cancellation, and surviving descriptor exhaustion (EMFILE) at low CPU.
#include <doctest/doctest.h>

#include "../support.hpp"

#include <tendril/net/listener.hpp>
#include <tendril/net/socket.hpp>
#include <tendril/net/tcp_server.hpp>
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
