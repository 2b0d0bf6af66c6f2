// Schedulers on several threads: run_threads(), and the primitives that
// cross threads (Channel, select, Mutex, WaitGroup, Event, FiberHandle).
// Run under ThreadSanitizer by `make check SAN=thread` (see the Makefile).
#include <doctest/doctest.h>

#include <tendril/sched/channel.hpp>
#include <tendril/sched/cond_var.hpp>
#include <tendril/sched/event.hpp>
#include <tendril/sched/mutex.hpp>
#include <tendril/sched/select.hpp>
#include <tendril/sched/threads.hpp>
#include <tendril/sched/wait_group.hpp>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

using namespace tendril;
using namespace std::chrono_literals;

TEST_CASE("run_threads runs fn once per thread, each on its own scheduler") {
    std::mutex m;
    std::set<unsigned> indices;
    std::set<Scheduler*> schedulers;
    std::set<std::thread::id> threads;
    run_threads(3, [&](unsigned i) {
        std::lock_guard<std::mutex> lock(m);
        indices.insert(i);
        schedulers.insert(Scheduler::current());
        threads.insert(std::this_thread::get_id());
        CHECK(ThreadGroup::current() != nullptr);
        CHECK(ThreadGroup::current()->size() == 3u);
    });
    CHECK(indices == std::set<unsigned>{0, 1, 2});
    CHECK(schedulers.size() == 3);
    CHECK(threads.size() == 3);
    CHECK(threads.count(std::this_thread::get_id()) == 1);  // the caller is thread 0
    CHECK(cpu_count() >= 1);
}

TEST_CASE("unbuffered ping-pong between fibers of two threads") {
    constexpr int N = 20000;
    Channel<int> ping, pong;
    std::atomic<int> last{-1}, errors{0};
    std::atomic<std::uint64_t> remote_wakes{0};
    run_threads(2, [&](unsigned i) {
        if (i == 1) {
            for (int v = 0; ping.recv(v) == Status::ok;)
                if (pong.send(v + 1) != Status::ok) ++errors;
        } else {
            for (int k = 0; k < N; ++k) {
                int got = -1;
                if (ping.send(k) != Status::ok || pong.recv(got) != Status::ok || got != k + 1) ++errors;
                last = got;
            }
            ping.close();
        }
        remote_wakes += Scheduler::current()->counters().remote_wakes;
    });
    CHECK(errors == 0);
    CHECK(last == N);
    CHECK(remote_wakes > 0);  // the waits really crossed threads
}

TEST_CASE("fan-in: senders on three threads, one receiver, every value once") {
    constexpr int kPerSender = 5000;
    Channel<int> ch(16);
    std::vector<int> seen(3 * kPerSender, 0);
    WaitGroup senders;
    senders.add(3);
    run_threads(3, [&](unsigned i) {
        go([&, i] {
            for (int k = 0; k < kPerSender; ++k) (void)ch.send(static_cast<int>(i) * kPerSender + k);
            senders.done();
        });
        if (i == 0) {
            go([&] {
                (void)senders.wait();
                ch.close();
            });
            for (int v : ch) ++seen[static_cast<std::size_t>(v)];
        }
    });
    int wrong = 0;
    for (int c : seen) wrong += c != 1;
    CHECK(wrong == 0);
}

TEST_CASE("close on one thread wakes receivers and senders parked on others") {
    Channel<int> ch;
    std::atomic<int> closed_recv{0}, closed_send{0};
    Event parked;
    run_threads(2, [&](unsigned i) {
        if (i == 1) {
            go([&] {
                int v;
                if (ch.recv(v) == Status::closed) ++closed_recv;
            });
            while (ch.waiting_receivers() < 1) yield();
            parked.set();
        } else {
            (void)parked.wait();
            ch.close();
            int v;
            CHECK(ch.recv(v) == Status::closed);
            CHECK(ch.send(1) == Status::closed);
            ++closed_send;
        }
    });
    CHECK(closed_recv == 1);
    CHECK(closed_send == 1);
}

TEST_CASE("select across threads: a receive case, a send case, and a timeout") {
    Channel<int> a, b, out;
    std::atomic<int> got_b{0}, sent{0}, timeouts{0};
    run_threads(2, [&](unsigned i) {
        if (i == 1) {
            int va = 0, vb = 0;
            // The value comes from thread 0 on b.
            Selected r = select(Deadline::after(10s), a.on_recv(va), b.on_recv(vb));
            if (r.index == 1 && r.status == Status::ok) got_b = vb;
            // A send case taken by a receiver on thread 0.
            r = select(Deadline::after(10s), out.on_send(42));
            if (r.index == 0 && r.status == Status::ok) ++sent;
            // Nobody: the timeout wins, and no node stays registered.
            r = select(Deadline::after(20ms), a.on_recv(va), b.on_recv(vb));
            if (r.index == -1 && r.status == Status::timeout) ++timeouts;
        } else {
            CHECK(b.send(7) == Status::ok);
            int v = 0;
            CHECK(out.recv(v) == Status::ok);
            CHECK(v == 42);
        }
    });
    CHECK(got_b == 7);
    CHECK(sent == 1);
    CHECK(timeouts == 1);
    CHECK(a.waiting_receivers() == 0);
    CHECK(b.waiting_receivers() == 0);
}

TEST_CASE("deadlines racing cross-thread handoffs: every sent value is received exactly once") {
    // A receiver with a deadline of a few microseconds races senders on the
    // other thread: a claimed wait must end with its value, never a timeout.
    constexpr int N = 20000;
    Channel<int> ch;
    std::atomic<long> sent_sum{0}, recv_sum{0};
    std::atomic<int> sent{0}, received{0};
    std::atomic<bool> done{false};
    run_threads(2, [&](unsigned i) {
        if (i == 0) {
            for (int k = 1; k <= N; ++k) {
                if (ch.send(k, Deadline::after(std::chrono::microseconds(k % 7 * 5))) == Status::ok) {
                    sent_sum += k;
                    ++sent;
                }
            }
            done = true;
        } else {
            while (!done) {
                int v = 0;
                Status st = ch.recv(v, Deadline::after(std::chrono::microseconds(3)));
                if (st == Status::ok) {
                    recv_sum += v;
                    ++received;
                }
            }
            // Drain what a sender might have handed over at the very end.
            int v = 0;
            while (ch.try_recv(v) == Status::ok) {
                recv_sum += v;
                ++received;
            }
        }
    });
    CHECK(sent == received);
    CHECK(sent_sum == recv_sum);
    MESSAGE(sent.load() << " of " << N << " sends met a receiver in time");
}

TEST_CASE("Mutex and CondVar across threads") {
    Mutex m;
    CondVar cv;
    long counter = 0;
    int turn = 0;
    constexpr int kRounds = 2000;
    run_threads(2, [&](unsigned i) {
        for (int k = 0; k < kRounds; ++k) {
            std::unique_lock<Mutex> lock(m);
            // Strict alternation: each thread waits for its turn.
            CHECK(cv.wait(m, [&] { return turn == static_cast<int>(i); }) == Status::ok);
            ++counter;
            turn = 1 - turn;
            cv.notify_all();
        }
    });
    CHECK(counter == 2 * kRounds);
}

TEST_CASE("FiberHandle join and cancel from another thread") {
    Channel<FiberHandle> handles(1);
    std::atomic<int> cancelled{0}, joined{0};
    run_threads(2, [&](unsigned i) {
        if (i == 1) {
            FiberHandle h = go([&] {
                if (sleep_for(30s) == Status::cancelled) ++cancelled;
            });
            (void)handles.send(h);
        } else {
            FiberHandle h;
            CHECK(handles.recv(h) == Status::ok);
            h.cancel();
            if (h.join(Deadline::after(10s)) == Status::ok) ++joined;
            CHECK(h.done());
        }
    });
    CHECK(cancelled == 1);
    CHECK(joined == 1);
}

TEST_CASE("a plain thread wakes fibers: try_send, Event::set, post") {
    Channel<int> ch(1);
    Event go_ahead;
    std::atomic<int> got{0}, posted{0};
    Scheduler* sched = nullptr;
    std::thread feeder;
    run([&] {
        sched = Scheduler::current();
        Scheduler::Hold hold(*sched);  // woken from outside: not a deadlock
        feeder = std::thread([&] {
            while (ch.try_send(5) != Status::ok) std::this_thread::yield();
            go_ahead.set();
            sched->post([&] { ++posted; });
        });
        int v = 0;
        if (ch.recv(v) == Status::ok) got = v;
        CHECK(go_ahead.wait(Deadline::after(10s)) == Status::ok);
        while (posted == 0) CHECK(sleep_for(1ms) == Status::ok);
    });
    feeder.join();
    CHECK(got == 5);
    CHECK(posted == 1);
}

TEST_CASE("post_all runs a fiber on every thread of the group") {
    std::atomic<int> ran{0};
    WaitGroup wg;
    wg.add(3);
    run_threads(3, [&](unsigned i) {
        if (i == 0) ThreadGroup::current()->post_all([&] { ++ran; wg.done(); });
        (void)wg.wait(Deadline::after(10s));
    });
    CHECK(ran == 3);
}

TEST_CASE("a waiter woken from another thread may destroy the primitive at once") {
    // The waker must be done with the channel (its lock) before the wake: the
    // woken fiber, on another core, frees it as soon as its wait returns.
    // ASan/TSan see the use after free if a wake happens under the lock.
    constexpr int kRounds = 3000;
    Channel<Channel<int>*> handoff;  // thread 0 gives thread 1 each round's channel
    Channel<Event*> events;
    std::atomic<int> ok{0};
    run_threads(2, [&](unsigned i) {
        if (i == 0) {
            for (int k = 0; k < kRounds; ++k) {
                auto* ch = new Channel<int>;  // unbuffered: send parks until thread 1 takes it
                (void)handoff.send(ch);
                if (ch->send(k) == Status::ok) ++ok;
                delete ch;
                auto* ev = new Event;
                (void)events.send(ev);
                if (ev->wait(Deadline::after(10s)) == Status::ok) ++ok;
                delete ev;
            }
            handoff.close();
            events.close();
        } else {
            for (Channel<int>* ch = nullptr; handoff.recv(ch) == Status::ok;) {
                int v = 0;
                (void)ch->recv(v);
                Event* ev = nullptr;
                if (events.recv(ev) == Status::ok) ev->set();
            }
        }
    });
    CHECK(ok == 2 * kRounds);
}
