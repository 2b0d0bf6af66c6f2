// Channel<T> and select: rendezvous, buffering, close, deadlines,
// cancellation, iteration, FIFO wake order, fair select.
#include <doctest/doctest.h>

#include <tendril/sched/channel.hpp>
#include <tendril/sched/select.hpp>
#include <tendril/sched/wait_group.hpp>

#include <memory>
#include <string>
#include <vector>

using namespace tendril;

TEST_CASE("unbuffered ping-pong: each send meets a receive") {
    constexpr int N = 10000;
    int last = -1;
    run([&] {
        Channel<int> ping, pong;
        auto h = go([&] {
            for (int v = 0; ping.recv(v) == Status::ok;) REQUIRE(pong.send(v + 1) == Status::ok);
        });
        for (int i = 0; i < N; ++i) {
            REQUIRE(ping.send(i) == Status::ok);
            REQUIRE(pong.recv(last) == Status::ok);
            REQUIRE(last == i + 1);
        }
        ping.close();
        (void)h.join();
    });
    CHECK(last == N);
}

TEST_CASE("an unbuffered send waits until a receiver takes the value") {
    std::string trace;
    run([&] {
        Channel<int> ch;
        go([&] {
            trace += "s";
            REQUIRE(ch.send(7) == Status::ok);
            trace += "S";
        });
        yield();
        CHECK(trace == "s");  // the sender is parked
        CHECK(ch.waiting_senders() == 1);
        int v = 0;
        REQUIRE(ch.recv(v) == Status::ok);
        CHECK(v == 7);
        yield();
        CHECK(trace == "sS");
    });
}

TEST_CASE("buffered: FIFO, send blocks only when full, try ops report full/empty") {
    run([] {
        Channel<std::string> ch(2);
        CHECK(ch.try_send("a") == Status::ok);
        CHECK(ch.try_send("b") == Status::ok);
        CHECK(ch.try_send("c") == Status::full);
        CHECK(ch.size() == 2);
        bool sent = false;
        go([&] {
            REQUIRE(ch.send("c") == Status::ok);
            sent = true;
        });
        yield();
        CHECK_FALSE(sent);
        std::string v;
        CHECK(ch.try_recv(v) == Status::ok);
        CHECK(v == "a");
        CHECK(ch.recv(v) == Status::ok);
        CHECK(v == "b");
        CHECK(ch.recv(v) == Status::ok);  // the parked sender's value moved into the buffer
        CHECK(v == "c");
        CHECK(ch.try_recv(v) == Status::empty);
        yield();
        CHECK(sent);
    });
}

TEST_CASE("close: receivers drain the buffer, then see closed; sending is an error") {
    run([] {
        Channel<int> ch(3);
        REQUIRE(ch.send(1) == Status::ok);
        REQUIRE(ch.send(2) == Status::ok);
        ch.close();
        ch.close();  // idempotent
        CHECK(ch.send(3) == Status::closed);
        CHECK(ch.try_send(3) == Status::closed);
        int v = 0;
        CHECK(ch.recv(v) == Status::ok);
        CHECK(v == 1);
        CHECK(ch.recv(v) == Status::ok);
        CHECK(v == 2);
        CHECK(ch.recv(v) == Status::closed);
        CHECK(ch.try_recv(v) == Status::closed);
        CHECK_FALSE(ch.recv().has_value());
    });
}

TEST_CASE("close wakes parked receivers and senders with closed") {
    run([] {
        Channel<int> ch;
        Status r = Status::ok, s = Status::ok;
        auto a = go([&] {
            int v = 0;
            r = ch.recv(v);
        });
        auto b = go([&] {
            Channel<int> other;
            (void)other;
        });
        yield();
        ch.close();
        (void)a.join();
        (void)b.join();
        CHECK(r == Status::closed);
        Channel<int> full(0);
        auto c = go([&] { s = full.send(1); });
        yield();
        full.close();
        (void)c.join();
        CHECK(s == Status::closed);
    });
}

TEST_CASE("range-for iterates until the channel is closed and drained") {
    std::vector<int> got;
    run([&] {
        Channel<int> ch(4);
        go([&] {
            for (int i = 0; i < 10; ++i) REQUIRE(ch.send(i) == Status::ok);
            ch.close();
        });
        for (int v : ch) got.push_back(v);
    });
    CHECK(got == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
}

TEST_CASE("recv and send with a deadline time out and leave the channel clean") {
    run([] {
        Channel<int> ch;
        int v = 0;
        auto t0 = Clock::now();
        CHECK(ch.recv(v, Deadline::after(10ms)) == Status::timeout);
        CHECK(Clock::now() - t0 >= 10ms);
        CHECK(ch.waiting_receivers() == 0);
        CHECK(ch.send(1, Deadline::after(1ms)) == Status::timeout);
        CHECK(ch.waiting_senders() == 0);
        CHECK(ch.recv(v, Deadline::after(0ms)) == Status::timeout);
    });
}

TEST_CASE("cancelling a blocked receiver wakes it with cancelled and unregisters it") {
    run([] {
        Channel<int> ch;
        Status st = Status::ok;
        auto h = go([&] {
            int v = 0;
            st = ch.recv(v);
        });
        yield();
        CHECK(ch.waiting_receivers() == 1);
        h.cancel();
        (void)h.join();
        CHECK(st == Status::cancelled);
        CHECK(ch.waiting_receivers() == 0);
        CHECK(ch.try_send(1) == Status::full);  // nobody left to hand it to
    });
}

TEST_CASE("waiters are woken in FIFO order") {
    std::vector<int> order;
    run([&] {
        Channel<int> ch;
        WaitGroup wg;
        for (int i = 0; i < 5; ++i) {
            wg.add();
            go([&, i] {
                int v = 0;
                REQUIRE(ch.recv(v) == Status::ok);
                order.push_back(i * 100 + v);
                wg.done();
            });
        }
        yield();
        for (int i = 0; i < 5; ++i) REQUIRE(ch.send(i) == Status::ok);
        REQUIRE(wg.wait() == Status::ok);
    });
    CHECK(order == std::vector<int>{0, 101, 202, 303, 404});
}

TEST_CASE("move-only values travel through channels") {
    run([] {
        Channel<std::unique_ptr<int>> ch(1);
        REQUIRE(ch.send(std::make_unique<int>(5)) == Status::ok);
        std::unique_ptr<int> p;
        REQUIRE(ch.recv(p) == Status::ok);
        CHECK(*p == 5);
    });
}

TEST_CASE("select takes a ready case at once, and picks fairly among ready cases") {
    run([] {
        Channel<int> a(1000), b(1000);
        int counts[2] = {0, 0};
        for (int i = 0; i < 1000; ++i) {
            REQUIRE(a.send(i) == Status::ok);
            REQUIRE(b.send(i) == Status::ok);
        }
        for (int i = 0; i < 1000; ++i) {
            int va = -1, vb = -1;
            auto r = select(a.on_recv(va), b.on_recv(vb));
            REQUIRE(r.status == Status::ok);
            REQUIRE((r.index == 0 || r.index == 1));
            ++counts[r.index];
        }
        // Both were always ready: a fair pick lands near 500/500.
        CHECK(counts[0] > 400);
        CHECK(counts[1] > 400);
    });
}

TEST_CASE("select blocks until one case can proceed and unregisters the others") {
    run([] {
        Channel<int> a, b;
        std::string out;
        go([&] { REQUIRE(b.send(42) == Status::ok); });
        int va = 0, vb = 0;
        auto r = select(a.on_recv(va), b.on_recv(vb));
        CHECK(r.index == 1);
        CHECK(r.status == Status::ok);
        CHECK(vb == 42);
        CHECK(a.waiting_receivers() == 0);
        CHECK(b.waiting_receivers() == 0);
    });
}

TEST_CASE("select with send cases, closed channels, timeouts and a default") {
    run([] {
        Channel<int> out, in, closed_ch;
        closed_ch.close();
        int got = 0;
        go([&] {
            int v = 0;
            REQUIRE(out.recv(v) == Status::ok);
            got = v;
        });
        int dummy;
        auto r = select(out.on_send(9), in.on_recv(dummy));
        CHECK(r.index == 0);
        yield();
        CHECK(got == 9);

        r = select(in.on_recv(dummy), closed_ch.on_recv(dummy));
        CHECK(r.index == 1);
        CHECK(r.status == Status::closed);

        r = select(Deadline::after(5ms), in.on_recv(dummy));
        CHECK(r.index == -1);
        CHECK(r.status == Status::timeout);
        CHECK(in.waiting_receivers() == 0);

        r = try_select(in.on_recv(dummy), out.on_send(1));
        CHECK(r.index == -1);
        CHECK(r.status == Status::empty);
    });
}

TEST_CASE("a cancelled select returns cancelled and leaves no registration") {
    run([] {
        Channel<int> a, b;
        Selected r;
        auto h = go([&] {
            int x, y;
            r = select(a.on_recv(x), b.on_recv(y));
        });
        yield();
        CHECK(a.waiting_receivers() == 1);
        h.cancel();
        (void)h.join();
        CHECK(r.index == -1);
        CHECK(r.status == Status::cancelled);
        CHECK(a.waiting_receivers() == 0);
        CHECK(b.waiting_receivers() == 0);
    });
}
