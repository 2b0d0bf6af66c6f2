// The poller through the scheduler: readiness, edge-trigger semantics,
// hang-up detection, stale events after close and reuse, cross-thread wake.
#include <doctest/doctest.h>

#include <tendril/net/poll_fd.hpp>
#include <tendril/net/socket.hpp>
#include <tendril/sched/channel.hpp>
#include <tendril/sched/event.hpp>
#include <tendril/sched/detail/poll_desc.hpp>
#include <tendril/sched/detail/poller.hpp>
#include <tendril/sched/scheduler.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <thread>

using namespace tendril;

TEST_CASE("poller backend is the one the build picked") {
    CHECK(std::string(Poller::backend()).size() > 0);
    MESSAGE("poller backend: " << std::string(Poller::backend()));
}

TEST_CASE("a pipe: a reader parks until data arrives, and a ready fd costs no wait") {
    run([] {
        int p[2];
        REQUIRE(::pipe(p) == 0);
        PollFd r(p[0]), w(p[1]);
        std::string got;
        auto h = go([&] {
            char buf[64];
            IoResult res = r.read(buf, sizeof buf);
            REQUIRE(res.ok());
            got.assign(buf, res.n);
        });
        yield();
        CHECK(got.empty());  // parked: nothing to read yet
        REQUIRE(w.write("hello", 5).ok());
        (void)h.join();
        CHECK(got == "hello");
        // Data already there: no park at all.
        REQUIRE(w.write("x", 1).ok());
        REQUIRE(sleep_for(1ms) == Status::ok);  // let the edge arrive
        CHECK(r.desc()->readable);
        CHECK(r.wait_readable(Deadline::after(0ms)) == Status::ok);
    });
}

TEST_CASE("edge-triggered: reads drain to EAGAIN, then the next write is a new edge") {
    run([] {
        auto [a, b] = Socket::pair();
        std::string big(100000, 'z');
        auto writer = go([&, &b = b] { REQUIRE(b.write_all(big).ok()); });
        std::size_t total = 0;
        char buf[7000];
        while (total < big.size()) {
            IoResult r = a.read_some(buf, sizeof buf, Deadline::after(5s));
            REQUIRE(r.ok());
            total += r.n;
        }
        (void)writer.join();
        CHECK(total == big.size());
        // Drained: the flag is down and a read would park.
        IoResult none = a.read_some(buf, sizeof buf, Deadline::after(5ms));
        CHECK(none.status == Status::timeout);
        CHECK_FALSE(a.fd().desc()->readable);
        go([&, &b = b] { REQUIRE(b.write_all("again").ok()); });
        IoResult again = a.read_some(buf, sizeof buf, Deadline::after(5s));
        REQUIRE(again.ok());
        CHECK(std::string(buf, again.n) == "again");
    });
}

TEST_CASE("hang-up: a waiter wakes when the peer closes, not when it writes") {
    run([] {
        auto [a, b] = Socket::pair();
        bool woke = false;
        auto h = go([&, &a = a] {
            REQUIRE(a.wait_hangup(Deadline::after(5s)) == Status::ok);
            woke = true;
        });
        yield();
        REQUIRE(b.write_all("data that is not a hang-up").ok());
        REQUIRE(sleep_for(5ms) == Status::ok);
        CHECK_FALSE(woke);
        b.close();
        (void)h.join();
        CHECK(woke);
        CHECK(a.hung_up());
    });
}

TEST_CASE("select over a channel and a peer's hang-up (the comet waiter's wait)") {
    run([] {
        auto [a, b] = Socket::pair();
        Channel<int> notify;
        int got = 0;
        auto h = go([&, &a = a] {
            auto r = select(notify.on_recv(got), a.on_hangup());
            CHECK(r.index == 1);
        });
        yield();
        b.close();
        (void)h.join();
        CHECK(notify.waiting_receivers() == 0);  // left nothing behind
        CHECK(a.fd().desc()->reader == nullptr);
    });
}

TEST_CASE("closing an fd wakes its parked reader with closed; cancel wakes it with cancelled") {
    run([] {
        auto [a, b] = Socket::pair();
        Status seen = Status::ok;
        auto h = go([&, &a = a] {
            char c;
            seen = a.read_some(&c, 1).status;
        });
        yield();
        a.close();
        (void)h.join();
        CHECK(seen == Status::closed);

        auto [c, d] = Socket::pair();
        auto h2 = go([&, &c = c] {
            char ch;
            seen = c.read_some(&ch, 1).status;
        });
        yield();
        h2.cancel();
        (void)h2.join();
        CHECK(seen == Status::cancelled);
        CHECK(c.fd().desc()->reader == nullptr);
    });
}

TEST_CASE("events for a closed-and-reused descriptor number are dropped") {
    run([] {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
        int keep = ::dup(sv[0]);  // keeps the old registration alive after close
        PollFd old_fd(sv[0]);
        int number = sv[0];
        std::uint32_t old_gen = old_fd.desc()->gen;
        old_fd.close();
        // Reuse the number for a new pipe.
        int p[2];
        REQUIRE(::pipe(p) == 0);
        if (p[0] != number) {  // the kernel may hand the same number straight back
            REQUIRE(::dup2(p[0], number) == number);
            ::close(p[0]);
        }
        PollFd fresh(number);
        CHECK(fresh.desc()->gen != old_gen);
        bool woke = false;
        auto h = go([&] {
            char c;
            IoResult r = fresh.read(&c, 1, Deadline::after(30ms));
            woke = r.ok();
        });
        yield();
        // Traffic on the old socket raises events with the old generation.
        REQUIRE(::write(sv[1], "stale", 5) == 5);
        (void)h.join();
        CHECK_FALSE(woke);
        ::close(keep);
        ::close(sv[1]);
        ::close(p[1]);
    });
}

TEST_CASE("another thread can wake the loop out of an indefinite poll") {
    Scheduler s;
    std::atomic<bool> ran{false};
    auto t0 = Clock::now();
    s.go([&] {
        Scheduler::Hold hold(s);
        Event done;
        std::thread t([&] {
            std::this_thread::sleep_for(20ms);
            s.post([&] {
                ran = true;
                done.set();
            });
        });
        REQUIRE(done.wait() == Status::ok);
        t.join();
    });
    s.run();
    CHECK(ran);
    CHECK(Clock::now() - t0 < 5s);
}

TEST_CASE("data and the peer's FIN in one edge: the EOF behind a short read is still seen") {
    run([] {
        auto [a, b] = Socket::pair();
        REQUIRE(b.write_all("last words").ok());
        b.close();  // data and FIN are both pending before a reads anything
        REQUIRE(sleep_for(5ms) == Status::ok);
        char buf[4096];
        IoResult r = a.read_some(buf, sizeof buf, Deadline::after(1s));
        REQUIRE(r.ok());
        CHECK(std::string(buf, r.n) == "last words");
        IoResult end = a.read_some(buf, sizeof buf, Deadline::after(1s));
        CHECK(end.status == Status::eof);  // not a timeout
    });
}

TEST_CASE("a descriptor number reused after close gets events of its own") {
    run([] {
        int first = -1;
        {
            auto [a, b] = Socket::pair();
            first = a.native();
            go([&b = b] { (void)b.write_all("x"); });
            char c;
            REQUIRE(a.read_some(&c, 1, Deadline::after(1s)).ok());
        }
        // Both closed; the next pair likely reuses the numbers.
        auto [c, d] = Socket::pair();
        MESSAGE("first fd " << first << ", reused as " << c.native());
        go([&d = d] {
            (void)sleep_for(5ms);
            (void)d.write_all("fresh");
        });
        char buf[16];
        IoResult r = c.read_some(buf, sizeof buf, Deadline::after(2s));
        REQUIRE(r.ok());
        CHECK(std::string(buf, r.n) == "fresh");
    });
}
