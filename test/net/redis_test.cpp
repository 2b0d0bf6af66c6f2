// The Redis client: hiredis's protocol glue without a server, then Client
// and Subscriber against a real redis-server on a free loopback port --
// pipelining, concurrent fibers, deadlines, Redis killed and restarted, and
// a fake server that stops answering (half-open) or talks nonsense.
#include <doctest/doctest.h>

#include "../support.hpp"
#include "redis_server.hpp"

#include <tendril/net/listener.hpp>
#include <tendril/net/redis/client.hpp>
#include <tendril/net/redis/protocol.hpp>
#include <tendril/net/redis/subscriber.hpp>
#include <tendril/sched/channel.hpp>
#include <tendril/sched/wait_group.hpp>

#include <string>
#include <vector>

using namespace tendril;
using namespace std::string_literals;
using namespace std::string_view_literals;
using tendril::test::RedisServer;

namespace {

bool skip_redis(const char* name) {
    return test::skip_unless(test::have_redis_server(), name, "redis-server is not installed (make deps-test)");
}

redis::ClientOptions at(std::uint16_t port) {
    redis::ClientOptions o;
    o.port = port;
    o.backoff_min = 20ms;
    o.backoff_max = 100ms;
    return o;
}

}  // namespace

TEST_CASE("redis protocol: commands are binary-safe RESP arrays; replies parse however the bytes are split") {
    redis::Commands c{"SET", std::string_view("k\0ey", 4), ""};
    c.add({"GET", "x"});
    CHECK(c.count() == 2);
    CHECK(c.bytes() == "*3\r\n$3\r\nSET\r\n$4\r\nk\0ey\r\n$0\r\n\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\n"sv);

    std::string wire = "+OK\r\n-ERR no\r\n:42\r\n$-1\r\n*3\r\n$3\r\na\0b\r\n:-7\r\n*0\r\n$5\r\nhello\r\n"s;
    redis::ReplyReader reader;
    std::vector<redis::Reply> got;
    for (char ch : wire) {  // one byte at a time: the worst split
        reader.feed(&ch, 1);
        redis::Reply r;
        while (reader.next(r) == redis::ReplyReader::Next::reply) got.push_back(r);
    }
    REQUIRE(got.size() == 6);
    CHECK(got[0].is_status("OK"));
    CHECK(got[1].is_error());
    CHECK(got[1].str == "ERR no");
    CHECK(got[2].integer == 42);
    CHECK(got[3].is_nil());
    REQUIRE(got[4].is_array());
    CHECK(got[4].to_string() == "[\"a\\x00b\", (integer) -7, []]");
    CHECK(got[5].str == "hello");

    redis::ReplyReader bad;
    bad.feed("?what\r\n", 7);
    redis::Reply r;
    CHECK(bad.next(r) == redis::ReplyReader::Next::protocol_error);
    CHECK(!bad.error().empty());
}

TEST_CASE("redis protocol: a command without arguments is refused, not sent") {
    redis::Commands c;
    CHECK_THROWS_AS(c.add(std::vector<std::string>{}), std::invalid_argument);
    CHECK(c.empty());
}

TEST_CASE("redis: parse_address") {
    redis::ClientOptions o;
    std::string why;
    CHECK(redis::parse_address("10.0.0.1:7000", o));
    CHECK(o.host == "10.0.0.1");
    CHECK(o.port == 7000);
    CHECK(redis::parse_address("cache", o));
    CHECK(o.host == "cache");
    CHECK(o.port == 6379);
    CHECK(redis::parse_address("[::1]:6380", o));
    CHECK(o.host == "::1");
    CHECK(o.port == 6380);
    for (const char* bad : {"", ":6379", "h:", "h:0", "h:65536", "h:12x", "::1:6379", "[::1", "[::1]x"}) {
        CAPTURE(bad);
        CHECK_FALSE(redis::parse_address(bad, o, &why));
        CHECK(!why.empty());
    }
}

TEST_CASE("redis client: commands, error replies, binary values, a 1,000-command pipeline" *
          doctest::skip(skip_redis("redis client: commands"))) {
    run([] {
        RedisServer server;
        REQUIRE(server.wait_ready());
        redis::Client redis(at(server.port()));
        auto d = Deadline::after(5s);
        auto set = redis.command({"SET", "k", std::string_view("v\0\r\n", 4)}, d);
        REQUIRE(set.ok());
        CHECK(set->is_status("OK"));
        auto get = redis.command({"GET", "k"}, d);
        REQUIRE(get.ok());
        CHECK(get->str == std::string("v\0\r\n", 4));
        auto nil = redis.command({"GET", "nothing"}, d);
        REQUIRE(nil.ok());
        CHECK(nil->is_nil());
        // Redis refusing is a reply, not a transport failure.
        auto bad = redis.command({"NOSUCHCOMMAND"}, d);
        REQUIRE(bad.ok());
        CHECK(bad->is_error());
        CHECK(bad->str.find("unknown command") != std::string::npos);

        redis::Commands many;
        for (int i = 0; i < 1000; ++i) many.add({"INCR", "n"});
        many.add({"GET", "n"});
        auto all = redis.execute(many, d);
        REQUIRE(all.ok());
        REQUIRE(all->size() == 1001);
        for (int i = 0; i < 1000; ++i) REQUIRE(all.value[i].integer == i + 1);
        CHECK(all.value[1000].str == "1000");
        CHECK(redis.connects() == 1);
    });
}

TEST_CASE("redis client: 50 fibers share one client, every reply goes to its caller" *
          doctest::skip(skip_redis("redis client: 50 fibers"))) {
    run([] {
        RedisServer server;
        REQUIRE(server.wait_ready());
        redis::Client redis(at(server.port()));
        WaitGroup wg;
        int mismatches = 0, failures = 0;
        for (int f = 0; f < 50; ++f) {
            wg.add();
            go([&, f] {
                for (int i = 0; i < 40; ++i) {
                    std::string key = "f" + std::to_string(f), value = std::to_string(i);
                    auto r = redis.execute(redis::Commands{"SET", key, value}.add({"GET", key}), Deadline::after(5s));
                    if (!r) ++failures;
                    else if (r->at(1).str != value) ++mismatches;
                    if (i % 8 == 0) yield();
                }
                wg.done();
            });
        }
        REQUIRE(wg.wait(Deadline::after(20s)) == Status::ok);
        CHECK(failures == 0);
        CHECK(mismatches == 0);
        CHECK(redis.connects() == 1);
    });
}

TEST_CASE("redis client: a deadline ends a command, and the next one gets a fresh connection" *
          doctest::skip(skip_redis("redis client: a deadline"))) {
    run([] {
        RedisServer server;
        REQUIRE(server.wait_ready());
        redis::Client redis(at(server.port()));
        auto r = redis.command({"BLPOP", "empty-list", "10"}, Deadline::after(100ms));
        CHECK(r.status == Status::timeout);
        CHECK(redis.last_error().find("timeout") != std::string::npos);
        CHECK_FALSE(redis.connected());  // its late reply must not answer the next command
        auto ok = redis.command({"ECHO", "after"}, Deadline::after(5s));
        REQUIRE(ok.ok());
        CHECK(ok->str == "after");
        CHECK(redis.connects() == 2);
    });
}

TEST_CASE("redis client: Redis down is a clear error at once, Redis back is used again" *
          doctest::skip(skip_redis("redis client: Redis down"))) {
    run([] {
        RedisServer server;
        REQUIRE(server.wait_ready());
        auto o = at(server.port());
        o.backoff_min = o.backoff_max = 2s;  // the third call below must come within the backoff
        redis::Client redis(o);
        REQUIRE(redis.command({"SET", "a", "1"}, Deadline::after(5s)).ok());

        server.kill();
        auto r = redis.command({"GET", "a"}, Deadline::after(5s));
        CHECK_FALSE(r.ok());
        MESSAGE("first failure: " << redis.last_error());
        r = redis.command({"GET", "a"}, Deadline::after(5s));  // now the connect is refused
        CHECK_FALSE(r.ok());
        CHECK(redis.last_error().find("Connection refused") != std::string::npos);
        CHECK(redis.last_error().find("next attempt in") != std::string::npos);
        // Within the backoff, a call does not even try: the same answer, no connect.
        auto c0 = redis.connects();
        r = redis.command({"GET", "a"}, Deadline::after(5s));
        CHECK(r.status == Status::closed);
        CHECK(redis.connects() == c0);

        server.start();
        REQUIRE(server.wait_ready());
        Result<redis::Reply> back;
        for (int i = 0; i < 200 && !(back = redis.command({"PING"}, Deadline::after(1s))).ok(); ++i) (void)sleep_for(20ms);
        REQUIRE(back.ok());
        CHECK(back->is_status("PONG"));
        CHECK(redis.connects() == 2);
    });
}

TEST_CASE("redis connection: a name whose first address refuses connects to the next" *
          doctest::skip(skip_redis("redis connection: a name"))) {
    // As "localhost" resolving to ::1 and then 127.0.0.1, with Redis on 127.0.0.1 only.
    run([] {
        RedisServer server;
        REQUIRE(server.wait_ready());
        std::vector<SocketAddress> addrs{*SocketAddress::ip("127.0.0.1", test::free_port()),
                                         *SocketAddress::ip("127.0.0.1", server.port())};
        auto c = redis::Connection::open(addrs, "two-addresses", Deadline::after(5s));
        REQUIRE_MESSAGE(c.ok(), c.value.last_error());
        auto r = c->command({"PING"}, Deadline::after(5s));
        REQUIRE(r.ok());
        CHECK(r->is_status("PONG"));
        auto none = redis::Connection::open({addrs[0]}, "refusing", Deadline::after(5s));
        CHECK(none.error == ECONNREFUSED);
        CHECK(none.value.last_error().find("connecting to 127.0.0.1:") != std::string::npos);
    });
}

TEST_CASE("redis client: nobody listening at all" * doctest::skip(skip_redis("redis client: nobody listening"))) {
    run([] {
        redis::Client redis(at(test::free_port()));
        auto r = redis.command({"PING"}, Deadline::after(2s));
        CHECK(r.status == Status::error);
        CHECK(r.error == ECONNREFUSED);
        CHECK(redis.last_error().rfind("redis 127.0.0.1:", 0) == 0);
        CHECK(redis.connects() == 0);
    });
}

TEST_CASE("redis subscriber: messages in order; resubscribed after Redis restarts" *
          doctest::skip(skip_redis("redis subscriber: messages"))) {
    run([] {
        RedisServer server;
        REQUIRE(server.wait_ready());
        Channel<std::string> got(1000);
        std::vector<std::string> states;
        redis::Subscriber sub(
            at(server.port()), {"news", "other"},
            [&](const redis::Message& m) { REQUIRE(got.try_send(m.channel + "=" + m.payload) == Status::ok); },
            [&](bool up, const std::string& why) { states.push_back(up ? "up" : "down: " + why); }, 200ms);
        REQUIRE(sub.wait_subscribed(Deadline::after(5s)) == Status::ok);

        redis::Client pub(at(server.port()));
        for (int i = 0; i < 100; ++i) {
            auto r = pub.command({"PUBLISH", i % 2 ? "news" : "other", std::to_string(i)}, Deadline::after(5s));
            REQUIRE(r.ok());
            CHECK(r->integer == 1);  // one subscriber received it
        }
        for (int i = 0; i < 100; ++i) {
            std::string m;
            REQUIRE(got.recv(m, Deadline::after(5s)) == Status::ok);
            CHECK(m == std::string(i % 2 ? "news" : "other") + "=" + std::to_string(i));
        }

        server.kill();
        for (int i = 0; i < 100 && sub.subscribed(); ++i) (void)sleep_for(10ms);
        CHECK_FALSE(sub.subscribed());
        CHECK(!sub.last_error().empty());
        server.start();
        REQUIRE(server.wait_ready());
        REQUIRE(sub.wait_subscribed(Deadline::after(5s)) == Status::ok);
        sub.subscribe("late");  // a channel added on the live connection
        Result<redis::Reply> r;
        for (int i = 0; i < 100; ++i) {  // until the late subscription is confirmed
            r = pub.command({"PUBLISH", "late", "hello"}, Deadline::after(1s));
            if (r.ok() && r->integer == 1) break;
            (void)sleep_for(10ms);
        }
        REQUIRE(r.ok());
        std::string m;
        REQUIRE(got.recv(m, Deadline::after(5s)) == Status::ok);
        CHECK(m == "late=hello");
        CHECK(sub.connects() == 2);
        REQUIRE(states.size() >= 3);
        CHECK(states.front() == "up");
        CHECK(states[1].rfind("down: redis 127.0.0.1:", 0) == 0);
        CHECK(states.back() == "up");
        sub.stop();
    });
}

namespace {

// A fake Redis: confirms SUBSCRIBE, then says nothing more (as a host that
// vanished would), or answers with bytes that are not RESP.
struct FakeRedis {
    Listener listener = std::move(*Listener::listen(*SocketAddress::ip("127.0.0.1", 0)));
    int accepted = 0;
    FiberHandle fiber;
    explicit FakeRedis(std::string answer) {
        fiber = go([this, answer] {
            std::vector<Socket> keep;  // open, silent
            for (;;) {
                auto s = listener.accept();
                if (!s) return;
                ++accepted;
                char buf[512];
                if (!s->read_some(buf, sizeof buf, Deadline::after(5s))) continue;
                (void)s->write_all(answer, Deadline::after(5s));
                keep.push_back(std::move(s.value));
            }
        });
    }
    ~FakeRedis() {
        listener.close();
        (void)fiber.join();
    }
    std::uint16_t port() { return listener.local_address().port(); }
};

}  // namespace

TEST_CASE("redis subscriber: a connection that stops answering PING is dropped and reopened") {
    run([] {
        FakeRedis fake("*3\r\n$9\r\nsubscribe\r\n$1\r\nc\r\n:1\r\n");
        std::vector<std::string> states;
        redis::Subscriber sub(at(fake.port()), {"c"}, nullptr,
                              [&](bool up, const std::string& why) { states.push_back(up ? "up" : why); }, 50ms);
        REQUIRE(sub.wait_subscribed(Deadline::after(5s)) == Status::ok);
        for (int i = 0; i < 300 && fake.accepted < 2; ++i) (void)sleep_for(10ms);
        CHECK(fake.accepted >= 2);
        REQUIRE(states.size() >= 2);
        CHECK(states[1].find("no answer to PING") != std::string::npos);
        sub.stop();
    });
}

TEST_CASE("redis subscriber: a server that talks nonsense is a clear error, and the subscriber keeps trying") {
    run([] {
        FakeRedis fake("HTTP/1.1 400 Bad Request\r\n\r\n");
        std::vector<std::string> states;
        redis::Subscriber sub(at(fake.port()), {"c"}, nullptr,
                              [&](bool up, const std::string& why) { states.push_back(up ? "up" : why); }, 1s);
        for (int i = 0; i < 300 && fake.accepted < 3; ++i) (void)sleep_for(10ms);
        CHECK(fake.accepted >= 3);
        CHECK_FALSE(sub.subscribed());
        REQUIRE(!states.empty());
        CHECK(states[0].find("malformed reply") != std::string::npos);
        sub.stop();
    });
}
