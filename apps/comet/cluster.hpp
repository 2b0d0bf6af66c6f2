// comet --redis: several comet processes behind a load balancer act as one.
//
// Every node keeps its number of waiters in Redis (comet:waiters:NODE, with
// a 3 s expiry refreshed every second and within 50 ms of a change; the
// node's name in the set comet:nodes) and subscribes to comet:notify. A
// /notify on any node sums the other nodes' counts (one EVAL, which also
// drops the names of nodes whose count has expired), wakes its own waiters
// with n = that sum + its own exact count, and PUBLISHes "NODE n"; every
// other node wakes its waiters with that same n. `/` answers the same sum.
//
// What it guarantees: every waiter of every node that is subscribed when the
// notify is published is woken with the one n of that notify, the notifying
// node's included. n counts this node's waiters as of the notify and the
// others' as of their last sync (50 ms), so waiters that arrived or left
// within that window may be off by those; a node that died stops being
// counted within 3 s. When Redis cannot be reached (the sum or the PUBLISH
// fails), /notify wakes this node's waiters only, with their own number, and
// answers 503 with that n; `/` answers this node's count with 200. Both
// carry X-Comet-Cluster: unavailable and X-Comet-Cluster-Error: why, and so
// does `/` while this node is not subscribed (it would miss the others'
// notifies). Waiters keep waiting through an outage; the links reconnect
// with backoff. Notifies published while a node was cut off do not reach it
// (pub/sub keeps none).
#pragma once

#include "comet_handler.hpp"

#include <tendril/core/log.hpp>
#include <tendril/net/redis/client.hpp>
#include <tendril/net/redis/subscriber.hpp>
#include <tendril/sched/event.hpp>

#include <atomic>
#include <charconv>
#include <memory>
#include <string>

namespace comet {

struct ClusterOptions {
    tendril::redis::ClientOptions redis;
    std::string node;          // this node's name, unique in the cluster
    tendril::Duration timeout = std::chrono::milliseconds(500);  // per Redis round trip of a request
};

// Whether this node hears the others' notifies: set by the agent's
// subscriber (thread 0), read by every thread's link.
struct ClusterHealth {
    std::atomic<bool> subscribed{false};
};

inline constexpr const char* kNotifyChannel = "comet:notify";
inline constexpr const char* kNodesKey = "comet:nodes";
inline constexpr const char* kCountPrefix = "comet:waiters:";
inline constexpr auto kCountTtl = std::chrono::seconds(3);
inline constexpr auto kHeartbeat = std::chrono::seconds(1);
inline constexpr auto kSyncPoll = std::chrono::milliseconds(50);

// The sum of the other nodes' counts; forgets nodes whose count expired.
// KEYS[1] the node set, ARGV[1] the count key prefix, ARGV[2] this node.
inline constexpr const char* kSumScript = R"lua(
local total = 0
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= ARGV[2] then
    local v = redis.call('GET', ARGV[1] .. node)
    if v then total = total + tonumber(v) else redis.call('SREM', KEYS[1], node) end
  end
end
return total
)lua";

// "redis 127.0.0.1:6379: connecting: Connection refused" as a header value.
inline std::string header_safe(std::string s) {
    for (char& c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
    return s;
}

// One thread's link: a connection of its own for the requests it serves.
class RedisClusterLink final : public ClusterLink {
public:
    RedisClusterLink(Waiters& waiters, const ClusterOptions& options, const ClusterHealth& health)
        : waiters_(waiters), options_(options), health_(health), redis_(options.redis) {}

    Answer count() override {
        auto a = sum_of_others();
        if (!a.complete) a.n = 0;
        a.n += waiters_.count();
        if (a.complete && !health_.subscribed.load(std::memory_order_relaxed)) {
            a.complete = false;
            a.why = std::string("this node is not subscribed to ") + kNotifyChannel + " (reconnecting to redis)";
        }
        return a;
    }

    // The one n goes out first; this node's waiters get the same n once the
    // others can get it, or their own number if they cannot.
    Answer notify() override {
        Answer a = sum_of_others();
        if (!a.complete) {
            a.n = waiters_.notify();
            return a;
        }
        a.n += waiters_.count();
        auto r = redis_.command({"PUBLISH", kNotifyChannel, options_.node + " " + std::to_string(a.n)},
                                tendril::Deadline::after(options_.timeout));
        if (!r || r->is_error()) {
            a = failed(a, r);
            a.n = waiters_.notify();
            return a;
        }
        waiters_.deliver(a.n);
        return a;
    }

private:
    Answer sum_of_others() {
        Answer a;
        auto r = redis_.command({"EVAL", kSumScript, "1", kNodesKey, kCountPrefix, options_.node},
                                tendril::Deadline::after(options_.timeout));
        if (!r || !r->is_integer()) return failed(a, r);
        a.n = static_cast<std::size_t>(r->integer < 0 ? 0 : r->integer);
        return a;
    }

    Answer failed(Answer a, const tendril::Result<tendril::redis::Reply>& r) {
        a.complete = false;
        a.why = header_safe(!r ? redis_.last_error() : "redis: " + r.value.to_string());
        return a;
    }

    Waiters& waiters_;
    const ClusterOptions& options_;
    const ClusterHealth& health_;
    tendril::redis::Client redis_;
};

// The node's side of the cluster, on thread 0: the subscription to the
// others' notifies, and the sync of this node's count.
class ClusterAgent {
public:
    ClusterAgent(Waiters& waiters, const ClusterOptions& options, ClusterHealth& health)
        : waiters_(waiters), options_(options), health_(health) {}

    // Start both; wait up to `ready` for the subscription, so that a node
    // that says "listening" already hears the others' notifies.
    void start(tendril::Duration ready) {
        using namespace tendril;
        std::string at = options_.redis.host + ":" + std::to_string(options_.redis.port);
        subscriber_ = std::make_unique<redis::Subscriber>(
            options_.redis, std::vector<std::string>{kNotifyChannel},
            [this](const redis::Message& m) { on_notify(m.payload); },
            [this, at](bool up, const std::string& why) {
                health_.subscribed.store(up, std::memory_order_relaxed);
                if (up) {
                    log(LogLevel::warning, "comet: node %s: subscribed to %s on redis %s", options_.node.c_str(),
                        kNotifyChannel, at.c_str());
                } else {
                    log(LogLevel::warning, "comet: node %s: %s; serving this node's waiters alone, retrying",
                        options_.node.c_str(), why.c_str());
                }
            });
        sync_ = go([this] { sync_count(); }, FiberOptions{"comet-count-sync"});
        (void)subscriber_->wait_subscribed(Deadline::after(ready));
    }

    // Before the servers stop: leave the cluster (this node's waiters are
    // being released, so they should stop counting at once).
    void stop() {
        using namespace tendril;
        stopping_.set();
        (void)sync_.join();
        if (subscriber_) subscriber_->stop();
    }

private:
    void on_notify(const std::string& payload) {
        // "NODE n"; a node name has no spaces, so the last one splits.
        std::size_t space = payload.rfind(' ');
        std::size_t n = 0;
        const char* end = payload.data() + payload.size();
        if (space == std::string::npos ||
            std::from_chars(payload.data() + space + 1, end, n).ptr != end) {
            tendril::log(tendril::LogLevel::warning, "comet: ignoring a malformed notify on %s: '%s'",
                         kNotifyChannel, header_safe(payload.substr(0, 100)).c_str());
            return;
        }
        if (payload.compare(0, space, options_.node) == 0 && space == options_.node.size()) return;  // ours
        waiters_.deliver(n);
    }

    // Write this node's count when it changes (polled every 50 ms) and at
    // least every second, with an expiry so that a dead node drops out.
    void sync_count() {
        using namespace tendril;
        redis::Client redis(options_.redis);
        std::string key = std::string(kCountPrefix) + options_.node;
        std::string ttl = std::to_string(std::chrono::milliseconds(kCountTtl).count());
        std::size_t written = static_cast<std::size_t>(-1);
        Instant last_write{};
        while (stopping_.wait(Deadline::after(kSyncPoll)) == Status::timeout) {
            std::size_t now_count = waiters_.count();
            if (now_count == written && Clock::now() - last_write < kHeartbeat) continue;
            auto r = redis.execute(redis::Commands{"SET", key, std::to_string(now_count), "PX", ttl}.add(
                                       {"SADD", kNodesKey, options_.node}),
                                   Deadline::after(options_.timeout));
            if (r && !r->at(0).is_error()) {
                written = now_count;
                last_write = Clock::now();
            } else {
                written = static_cast<std::size_t>(-1);  // write again as soon as Redis is back
            }
        }
        (void)redis.execute(redis::Commands{"DEL", key}.add({"SREM", kNodesKey, options_.node}),
                            Deadline::after(options_.timeout));
    }

    Waiters& waiters_;
    const ClusterOptions& options_;
    ClusterHealth& health_;
    std::unique_ptr<tendril::redis::Subscriber> subscriber_;
    tendril::FiberHandle sync_;
    tendril::Event stopping_;
};

}  // namespace comet
