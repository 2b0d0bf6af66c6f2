// WaitGroup, Mutex, CondVar, Semaphore, Event: they park, hand over in FIFO
// order, honour deadlines and cancellation.
#include <doctest/doctest.h>

#include <tendril/sched/cond_var.hpp>
#include <tendril/sched/event.hpp>
#include <tendril/sched/mutex.hpp>
#include <tendril/sched/semaphore.hpp>
#include <tendril/sched/wait_group.hpp>

#include <deque>
#include <string>
#include <vector>

using namespace tendril;

TEST_CASE("WaitGroup waits for every done(), with a deadline") {
    run([] {
        WaitGroup wg;
        int finished = 0;
        for (int i = 0; i < 10; ++i) {
            wg.add();
            go([&, i] {
                REQUIRE(sleep_for(std::chrono::milliseconds(i)) == Status::ok);
                ++finished;
                wg.done();
            });
        }
        CHECK(wg.wait(Deadline::after(1ms)) == Status::timeout);
        CHECK(wg.wait() == Status::ok);
        CHECK(finished == 10);
        CHECK(wg.count() == 0);
    });
}

TEST_CASE("Mutex serialises a critical section that blocks, and hands over FIFO") {
    std::string trace;
    run([&] {
        Mutex m;
        WaitGroup wg;
        for (char c : std::string("abc")) {
            wg.add();
            go([&, c] {
                std::lock_guard<Mutex> lock(m);
                trace += c;
                REQUIRE(sleep_for(1ms) == Status::ok);  // blocks while holding the lock
                trace += c;
                wg.done();
            });
        }
        REQUIRE(wg.wait() == Status::ok);
        CHECK_FALSE(m.locked());
    });
    CHECK(trace == "aabbcc");
}

TEST_CASE("Mutex lock with a deadline, try_lock") {
    run([] {
        Mutex m;
        REQUIRE(m.try_lock());
        CHECK_FALSE(m.try_lock());
        auto h = go([&] { CHECK(m.lock(Deadline::after(2ms)) == Status::timeout); });
        (void)h.join();
        m.unlock();
        CHECK(m.lock(Deadline::after(1ms)) == Status::ok);
        m.unlock();
    });
}

TEST_CASE("CondVar: a bounded queue with producers and consumers") {
    std::vector<int> consumed;
    run([&] {
        Mutex m;
        CondVar not_empty, not_full;
        std::deque<int> q;
        WaitGroup wg;
        wg.add(2);
        go([&] {
            for (int i = 0; i < 100; ++i) {
                std::unique_lock<Mutex> lock(m);
                REQUIRE(not_full.wait(m, [&] { return q.size() < 3; }) == Status::ok);
                q.push_back(i);
                not_empty.notify_one();
            }
            wg.done();
        });
        go([&] {
            for (int i = 0; i < 100; ++i) {
                std::unique_lock<Mutex> lock(m);
                REQUIRE(not_empty.wait(m, [&] { return !q.empty(); }) == Status::ok);
                consumed.push_back(q.front());
                q.pop_front();
                not_full.notify_one();
            }
            wg.done();
        });
        REQUIRE(wg.wait() == Status::ok);
    });
    REQUIRE(consumed.size() == 100);
    for (int i = 0; i < 100; ++i) CHECK(consumed[i] == i);
}

TEST_CASE("CondVar wait times out and still holds the mutex") {
    run([] {
        Mutex m;
        CondVar cv;
        m.lock();
        CHECK(cv.wait(m, Deadline::after(2ms)) == Status::timeout);
        CHECK(m.locked());
        m.unlock();
    });
}

TEST_CASE("Semaphore bounds concurrency") {
    int inside = 0, peak = 0;
    run([&] {
        Semaphore sem(3);
        WaitGroup wg;
        for (int i = 0; i < 20; ++i) {
            wg.add();
            go([&] {
                REQUIRE(sem.acquire() == Status::ok);
                peak = std::max(peak, ++inside);
                REQUIRE(sleep_for(1ms) == Status::ok);
                --inside;
                sem.release();
                wg.done();
            });
        }
        REQUIRE(wg.wait() == Status::ok);
        CHECK(sem.available() == 3);
        CHECK(sem.try_acquire());
        CHECK(sem.acquire(Deadline::after(0ms)) == Status::ok);
        CHECK(sem.acquire(Deadline::after(0ms)) == Status::ok);
        CHECK(sem.acquire(Deadline::after(1ms)) == Status::timeout);
    });
    CHECK(peak == 3);
}

TEST_CASE("Event wakes every waiter and stays set until cleared") {
    run([] {
        Event ev;
        int woke = 0;
        WaitGroup wg;
        for (int i = 0; i < 5; ++i) {
            wg.add();
            go([&] {
                REQUIRE(ev.wait() == Status::ok);
                ++woke;
                wg.done();
            });
        }
        yield();
        CHECK(woke == 0);
        ev.set();
        REQUIRE(wg.wait() == Status::ok);
        CHECK(woke == 5);
        CHECK(ev.wait() == Status::ok);
        ev.clear();
        CHECK(ev.wait(Deadline::after(1ms)) == Status::timeout);
    });
}

TEST_CASE("every primitive's wait is cancellable") {
    run([] {
        WaitGroup wg;
        wg.add();
        Mutex m;
        m.lock();
        CondVar cv;
        Semaphore sem(0);
        Event ev;
        std::vector<Status> got(5, Status::ok);
        std::vector<FiberHandle> hs;
        hs.push_back(go([&] { got[0] = wg.wait(); }));
        hs.push_back(go([&] { got[1] = m.lock(Deadline::never()); }));
        hs.push_back(go([&] {
            Mutex m2;
            m2.lock();
            got[2] = cv.wait(m2);
            m2.unlock();
        }));
        hs.push_back(go([&] { got[3] = sem.acquire(); }));
        hs.push_back(go([&] { got[4] = ev.wait(); }));
        yield();
        for (auto& h : hs) h.cancel();
        for (auto& h : hs) (void)h.join();
        for (Status s : got) CHECK(s == Status::cancelled);
        m.unlock();
        CHECK_FALSE(m.locked());  // the cancelled waiter was not handed the lock
        wg.done();
    });
}
