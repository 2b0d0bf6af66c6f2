// Stream, the port of ScheduledFile: lines, separators, exact reads, EOF,
// buffering, timeouts as exceptions, connect_tcp through the resolver.
#include <doctest/doctest.h>

#include <tendril/net/listener.hpp>
#include <tendril/net/resolver.hpp>
#include <tendril/net/stream.hpp>
#include <tendril/sched/work_pool.hpp>

#include <string>
#include <vector>

using namespace tendril;

TEST_CASE("read_line, read_until, read_exact, read to EOF, line iteration") {
    run([] {
        auto [a, b] = Socket::pair();
        go([&b = b] {
            Stream w(std::move(b));
            w.write("first line\nsecond");
            w.write(" line\r\n--sep--tail bytes|1234567890");
            w.flush();
            w.write("\nl1\nl2\nlast without newline");
            w.close();
        });
        Stream r(std::move(a));
        CHECK(r.read_line() == "first line\n");
        CHECK(r.read_line() == "second line\r\n");
        CHECK(r.read_until("--sep--") == "--sep--");
        CHECK(r.read_until("|") == "tail bytes|");
        CHECK(r.read_exact(10) == "1234567890");
        std::vector<std::string> lines;
        for (const std::string& line : r.lines()) lines.push_back(line);
        CHECK(lines == std::vector<std::string>{"\n", "l1\n", "l2\n", "last without newline"});
        CHECK(r.read_line().empty());
        CHECK(r.at_eof());
    });
}

TEST_CASE("read_line honours its maximum; read_exact throws at an early EOF") {
    run([] {
        auto [a, b] = Socket::pair();
        go([&b = b] {
            Stream w(std::move(b));
            w.write(std::string(100, 'x') + "\nshort");
            w.close();
        });
        Stream r(std::move(a));
        CHECK(r.read_line(40) == std::string(40, 'x'));
        CHECK(r.read_line() == std::string(60, 'x') + "\n");
        CHECK_THROWS_AS(r.read_exact(10), IoError);
    });
}

TEST_CASE("a Stream timeout surfaces as IoError(timeout)") {
    run([] {
        auto [a, b] = Socket::pair();
        Stream r(std::move(a));
        r.set_timeout(10ms);
        try {
            (void)r.read_line();
            FAIL("expected a timeout");
        } catch (const IoError& e) {
            CHECK(e.status() == Status::timeout);
        }
    });
}

TEST_CASE("buffers are given back when idle") {
    run([] {
        auto [a, b] = Socket::pair();
        Stream w(std::move(b));
        Stream r(std::move(a));
        w.write("ping\n");
        w.flush();
        CHECK(r.read_line() == "ping\n");
        r.release_buffers();
        w.release_buffers();
        CHECK(r.buffered() == 0);
    });
}

TEST_CASE("resolve: numeric in place, names on the work pool; connect_tcp by name") {
    run([] {
        auto n = resolve("127.0.0.1", 80);
        REQUIRE(n.ok());
        CHECK(n.value.size() == 1);
        auto byname = resolve("localhost", 8080, Deadline::after(10s));
        REQUIRE(byname.ok());
        CHECK(!byname.value.empty());
        CHECK(byname.value[0].port() == 8080);
        auto bad = resolve("no-such-host.invalid", 80, Deadline::after(10s));
        CHECK(bad.status == Status::error);

        auto l = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
        REQUIRE(l.ok());
        std::uint16_t port = l->local_address().port();
        go([&] {
            auto c = l->accept(Deadline::after(5s));
            REQUIRE(c.ok());
            Stream s(std::move(c.value));
            s.write("hello " + s.read_line());
            s.close();
        });
        Stream s = Stream::connect_tcp("localhost", port, Deadline::after(5s));
        s.write("by name\n");
        s.flush();
        CHECK(s.read() == "hello by name\n");
    });
}

TEST_CASE("run_blocking runs on another thread while other fibers keep going") {
    run([] {
        int ticks = 0;
        auto ticker = go([&] {
            for (int i = 0; i < 5; ++i) {
                ++ticks;
                REQUIRE(sleep_for(2ms) == Status::ok);
            }
        });
        std::thread::id caller = std::this_thread::get_id(), worker;
        int v = run_blocking([&] {
            worker = std::this_thread::get_id();
            std::this_thread::sleep_for(std::chrono::milliseconds(30));
            return 42;
        });
        CHECK(v == 42);
        CHECK(worker != caller);
        CHECK(ticks == 5);  // the loop ran while the thread slept
        (void)ticker.join();
        CHECK_THROWS_AS(run_blocking([]() -> int { throw std::runtime_error("from the pool"); }),
                        std::runtime_error);
    });
}
