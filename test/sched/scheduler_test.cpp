// Scheduler: spawning, joining, yielding, sleeping, cancellation, dumps and
// the fatal reports (exception in a fiber, deadlock).
#include <doctest/doctest.h>

#include "../support.hpp"

#include <tendril/sched/channel.hpp>
#include <tendril/sched/event.hpp>
#include <tendril/sched/scheduler.hpp>
#include <tendril/sched/timer.hpp>
#include <tendril/sched/wait_group.hpp>

#include <unistd.h>

#include <atomic>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace tendril;

TEST_CASE("100,000 fibers spawned and joined") {
    constexpr int N = 100000;
    long sum = 0;
    run([&] {
        // Light guard pages cost no mappings; mapped ones (kernels before
        // 6.13) cost two each, and 100,000 of them exceed vm.max_map_count.
        FiberOptions o;
        o.guard = stack_guards_are_light() ? -1 : 0;
        std::vector<FiberHandle> hs;
        hs.reserve(N);
        for (int i = 0; i < N; ++i) hs.push_back(go([&sum, i] { sum += i; }, o));
        for (auto& h : hs) REQUIRE(h.join() == Status::ok);
    });
    CHECK(sum == long(N) * (N - 1) / 2);
}

TEST_CASE("run() returns when every fiber is done; fibers start in spawn order") {
    std::string order;
    Scheduler s;
    for (char c : std::string("abc")) s.go([&order, c] { order += c; });
    s.run();
    CHECK(order == "abc");
    CHECK(s.live_fibers() == 0);
}

TEST_CASE("yield lets every other ready fiber run once, round robin") {
    std::string trace;
    run([&] {
        auto a = go([&] {
            for (int i = 0; i < 3; ++i) {
                trace += 'a';
                yield();
            }
        });
        auto b = go([&] {
            for (int i = 0; i < 3; ++i) {
                trace += 'b';
                yield();
            }
        });
        (void)a.join();
        (void)b.join();
    });
    CHECK(trace == "ababab");
}

// Fibers of one round switch straight to each other (not through the loop),
// so the exception state they swap must follow each of them either way.
TEST_CASE("a fiber parked inside a catch block keeps its own exception; the others see none") {
    std::string trace;
    int clean_checks = 0;
    auto parks_in_catch = [&](const char* name) {
        try {
            throw std::runtime_error(name);
        } catch (const std::exception&) {
            for (int i = 0; i < 3; ++i) {
                yield();
                CHECK(std::uncaught_exceptions() == 0);
                try {
                    throw;  // the one being handled: this fiber's, whoever ran meanwhile
                } catch (const std::exception& e) {
                    trace += e.what();
                }
            }
        }
        CHECK(std::current_exception() == nullptr);
    };
    Scheduler s;
    s.go([&] { parks_in_catch("a"); });
    s.go([&] { parks_in_catch("b"); });
    s.go([&] {
        for (int i = 0; i < 4; ++i) {
            CHECK(std::current_exception() == nullptr);
            ++clean_checks;
            yield();
        }
    });
    // A round of three: a and b hand over directly, the last goes back to
    // the loop; and a fiber started by a direct switch (the next two).
    s.go([&] { CHECK(std::current_exception() == nullptr); });
    s.run();
    CHECK(trace == "ababab");
    CHECK(clean_checks == 4);
    CHECK(std::current_exception() == nullptr);
    CHECK(s.counters().switches >= 4 * 3);
}

TEST_CASE("sleeps wake in deadline order, not spawn order") {
    std::vector<int> woke;
    run([&] {
        WaitGroup wg;
        for (int ms : {30, 10, 20, 0}) {
            wg.add();
            go([&, ms] {
                REQUIRE(sleep_for(std::chrono::milliseconds(ms)) == Status::ok);
                woke.push_back(ms);
                wg.done();
            });
        }
        REQUIRE(wg.wait() == Status::ok);
    });
    CHECK(woke == std::vector<int>{0, 10, 20, 30});
}

TEST_CASE("a sleep lasts at least its duration") {
    run([] {
        auto t0 = Clock::now();
        REQUIRE(sleep_for(15ms) == Status::ok);
        CHECK(Clock::now() - t0 >= 15ms);
    });
}

TEST_CASE("cancel wakes a sleeping fiber with cancelled, and its RAII cleanup runs") {
    bool cleaned = false;
    Status seen = Status::ok;
    run([&] {
        auto h = go([&] {
            struct Cleanup {
                bool& flag;
                ~Cleanup() { flag = true; }
            } c{cleaned};
            seen = sleep_for(std::chrono::hours(1));
        });
        yield();
        h.cancel();
        REQUIRE(h.join() == Status::ok);
    });
    CHECK(seen == Status::cancelled);
    CHECK(cleaned);
}

TEST_CASE("cancellation is sticky, and a CancelShield lets cleanup block") {
    run([] {
        auto h = go([] {
            CHECK(sleep_for(std::chrono::hours(1)) == Status::cancelled);
            CHECK(this_fiber::cancelled());
            CHECK(sleep_for(1ms) == Status::cancelled);  // every later wait, too
            CancelShield shield;
            CHECK_FALSE(this_fiber::cancelled());
            CHECK(sleep_for(1ms) == Status::ok);
        });
        yield();
        h.cancel();
        REQUIRE(h.join() == Status::ok);
    });
}

TEST_CASE("join with a deadline times out, then succeeds") {
    run([] {
        Event ev;
        auto h = go([&] { REQUIRE(ev.wait() == Status::ok); });
        CHECK(h.join(Deadline::after(5ms)) == Status::timeout);
        CHECK_FALSE(h.done());
        ev.set();
        CHECK(h.join() == Status::ok);
        CHECK(h.done());
    });
}

TEST_CASE("fiber names and ids") {
    run([] {
        CHECK(std::string(this_fiber::name()) == "main");
        auto h = go([] { CHECK(std::string(this_fiber::name()) == "worker"); }, FiberOptions{"worker"});
        CHECK(std::string(h.name()) == "worker");
        CHECK(h.id() != this_fiber::id());
        this_fiber::set_name("renamed");
        CHECK(std::string(this_fiber::name()) == "renamed");
        (void)h.join();
    });
}

TEST_CASE("post() from another thread runs a fiber on the scheduler's thread") {
    std::atomic<int> ran{0};
    std::thread::id where;
    Scheduler s;
    s.go([&] {
        Event done;
        Scheduler::Hold hold(s);
        std::thread t([&] {
            s.post([&] {
                where = std::this_thread::get_id();
                ran = 1;
                done.set();
            });
        });
        REQUIRE(done.wait(Deadline::after(5s)) == Status::ok);
        t.join();
    });
    s.run();
    CHECK(ran == 1);
    CHECK(where == std::this_thread::get_id());
}

TEST_CASE("Timer runs its function unless cancelled; run() waits for pending timers") {
    int fired = 0;
    run([&] {
        static Timer a, b;
        a.start(Deadline::after(5ms), [&] { fired += 1; });
        b.start(Deadline::after(5ms), [&] { fired += 10; });
        b.cancel();
        CHECK(a.pending());
        CHECK_FALSE(b.pending());
    });
    CHECK(fired == 1);
}

TEST_CASE("stop() makes run() return with fibers still parked; the destructor cancels them") {
    bool unwound = false;
    {
        Scheduler s;
        s.go([&] {
            struct Flag {
                bool& f;
                ~Flag() { f = true; }
            } flag{unwound};
            Scheduler::Hold hold(*Scheduler::current());
            Event never;
            CHECK(never.wait() == Status::cancelled);
        });
        s.go([&] { s.stop(); });
        s.run();
        CHECK(s.live_fibers() == 1);
        CHECK_FALSE(unwound);
    }
    CHECK(unwound);
}

TEST_CASE("dump() lists every live fiber with its state and what it waits on") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    run([&] {
        Channel<int> ch;
        auto h = go([&] { (void)ch.recv(); }, FiberOptions{"waiter-fiber"});
        yield();
        Scheduler::current()->dump(fds[1]);
        ch.close();
        (void)h.join();
    });
    ::close(fds[1]);
    char buf[4096];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    ::close(fds[0]);
    std::string text(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    CHECK(text.find("'waiter-fiber' parked on channel recv") != std::string::npos);
    CHECK(text.find("'main' running") != std::string::npos);
}

TENDRIL_CHILD("uncaught-exception") {
    run([] {
        go([] { throw std::runtime_error("boom from the handler"); }, FiberOptions{"thrower"});
        (void)sleep_for(1s);
    });
    return 0;
}

TEST_CASE("an exception escaping a fiber ends the process with the fiber's name") {
    auto r = test::run_child("uncaught-exception");
    CHECK(r.signal == SIGABRT);
    CHECK(r.err.find("uncaught exception in fiber") != std::string::npos);
    CHECK(r.err.find("'thrower'") != std::string::npos);
    CHECK(r.err.find("boom from the handler") != std::string::npos);
}

TENDRIL_CHILD("deadlock") {
    run([] {
        Channel<int> ch;
        go([&] { (void)ch.recv(); }, FiberOptions{"stuck-receiver"});
        (void)ch.recv();
    });
    return 0;
}

TEST_CASE("when every fiber waits on something nothing can wake, run() reports a deadlock") {
    auto r = test::run_child("deadlock");
    CHECK(r.signal == SIGABRT);
    CHECK(r.err.find("all fibers are asleep - deadlock!") != std::string::npos);
    CHECK(r.err.find("'stuck-receiver' parked on channel recv") != std::string::npos);
}

TENDRIL_CHILD("sigquit-dump") {
    run([] {
        go([] { (void)sleep_for(200ms); }, FiberOptions{"sleepy"});
        ::kill(::getpid(), SIGQUIT);
        (void)sleep_for(50ms);
    });
    return 0;
}

TEST_CASE("SIGQUIT prints the fiber dump and the process carries on") {
    auto r = test::run_child("sigquit-dump");
    CHECK(r.exit_code == 0);
    CHECK(r.err.find("'sleepy' parked on sleep") != std::string::npos);
}

TEST_CASE("deadlines are lazy in the heap but exact for the fiber: never early, never lost") {
    run([] {
        Event ev;
        // A short wait that ends early leaves its entry in the heap...
        go([&] { (void)sleep_for(2ms), ev.set(); });
        CHECK(ev.wait(Deadline::after(20ms)) == Status::ok);
        ev.clear();
        // ...and a longer wait after it must not time out at that stale entry.
        auto t0 = Clock::now();
        CHECK(ev.wait(Deadline::after(60ms)) == Status::timeout);
        CHECK(Clock::now() - t0 >= 60ms);
        // A shorter deadline after a longer one is honoured too.
        Event never;
        auto h = go([&] { CHECK(never.wait(Deadline::after(10s)) == Status::cancelled); });
        t0 = Clock::now();
        CHECK(never.wait(Deadline::after(10ms)) == Status::timeout);
        CHECK(Clock::now() - t0 < 5s);
        h.cancel();
        (void)h.join();
    });
}
