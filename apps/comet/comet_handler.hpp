// The comet handler and its shared state (see main.cpp for the protocol).
// A header of its own so the c10k benchmark can run this very server inside
// its own process (--same-process), as the seed's test did.
#pragma once

#include <tendril/http/server.hpp>
#include <tendril/http/url.hpp>
#include <tendril/sched/channel.hpp>
#include <tendril/sched/select.hpp>

#include <tendril/core/intrusive_list.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace comet {

using namespace tendril;
using tendril::http::BaseHTTPRequestHandler;

inline const char kAppPage[] =
#include "comet/app.html.inc"
    ;

// The waiters registered right now; shared by every connection of every
// thread (--threads N). The lock is held for list edits and for the
// non-blocking hand-off of n in notify(), never across a wait: a std::mutex
// then costs a thread no more than the spin of a contended SpinLock, and it
// does not burn the other core while one thread notifies 10,000 waiters.
class Waiters {
public:
    struct Waiter {
        tendril::ListHook<Waiter> hook;
        Channel<int> channel{1};  // capacity 1: notify never blocks
    };

    // False once release_all() has run: a request that got its headers out
    // just before the stop must not park until the grace period ends.
    bool add(Waiter* w) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (released_) return false;
        list_.push_back(w);
        count_.store(list_.size(), std::memory_order_relaxed);
        return true;
    }
    void remove(Waiter* w) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!list_.contains(w)) return;
        list_.remove(w);
        count_.store(list_.size(), std::memory_order_relaxed);
    }
    // Deliver n = the number of waiters (plus `elsewhere`, those of other
    // nodes of a cluster) to each of them; they leave the list. A waiter on
    // another thread gets n with its wake-up (batched per thread).
    std::size_t notify(std::size_t elsewhere = 0) {
        std::lock_guard<std::mutex> lock(mutex_);
        std::size_t n = list_.size() + elsewhere;
        wake(n);
        return n;
    }
    // Another node's notify: deliver its n; returns how many were woken here.
    std::size_t deliver(std::size_t n) {
        std::lock_guard<std::mutex> lock(mutex_);
        std::size_t woken = list_.size();
        wake(n);
        return woken;
    }
    // Shutting down: wake every waiter with a closed channel.
    void release_all() {
        std::lock_guard<std::mutex> lock(mutex_);
        released_ = true;
        while (Waiter* w = list_.pop_front()) w->channel.close();
        count_.store(0, std::memory_order_relaxed);
    }
    std::size_t count() const { return count_.load(std::memory_order_relaxed); }

private:
    void wake(std::size_t n) {
        while (Waiter* w = list_.pop_front()) (void)w->channel.try_send(static_cast<int>(n));
        count_.store(0, std::memory_order_relaxed);
    }

    std::mutex mutex_;
    tendril::IntrusiveList<Waiter, &Waiter::hook> list_;
    std::atomic<std::size_t> count_{0};
    bool released_ = false;
};

// What a handler asks of the other nodes (cluster.hpp; none without --redis).
class ClusterLink {
public:
    // n, and whether the other nodes took part; when they could not, why.
    struct Answer {
        std::size_t n = 0;
        bool complete = true;
        std::string why;
    };
    virtual ~ClusterLink() = default;
    virtual Answer count() = 0;   // waiters of every node
    virtual Answer notify() = 0;  // wake every node's waiters with the cluster's n
};

class CometHandler : public BaseHTTPRequestHandler {
public:
    explicit CometHandler(Waiters& waiters, ClusterLink* cluster = nullptr) : waiters_(waiters), cluster_(cluster) {}

    void do_GET() override {
        std::string_view route = http::target_path(path);
        if (route == "/wait") return wait();
        if (route == "/notify") {
            if (!cluster_) return text(std::to_string(waiters_.notify()));
            return clustered(cluster_->notify(), 503);
        }
        if (route == "/app") return page();
        if (!cluster_) return text(std::to_string(waiters_.count()));
        clustered(cluster_->count(), 200);
    }

private:
    void wait() {
        send_response(200);
        send_header("Content-Type", "text/plain");
        send_header("Cache-Control", "no-store");
        end_headers();
        wfile.flush();  // the client sees the headers before we wait
        if (command == "HEAD") return;

        // On the heap: /notify walks the list from another fiber, and must not
        // touch this fiber's stack, which is compacted while it waits.
        auto w = std::make_unique<Waiters::Waiter>();
        if (!waiters_.add(w.get())) return abort_connection();
        int n = 0;
        Selected got = select(w->channel.on_recv(n), connection().on_hangup());
        waiters_.remove(w.get());
        if (got.index == 0 && got.status == Status::ok) {
            wfile.write(std::to_string(n));
            return;
        }
        // Hung up, cancelled, or released at shutdown: the headers (200) are
        // out, so the only honest ending is a close without the body's end.
        abort_connection();
    }

    void text(std::string body, int status = 200, std::string_view degraded = {}) {
        http::Response r(status, std::move(body), "text/plain");
        r.headers.add("Cache-Control", "no-store");
        if (!degraded.empty()) {
            // n covers this node only: say so, and why, without changing the body's form.
            r.headers.add("X-Comet-Cluster", "unavailable");
            r.headers.add("X-Comet-Cluster-Error", std::string(degraded));
            if (status == 503) r.headers.add("Retry-After", "1");
        }
        send(r);
    }

    void clustered(const ClusterLink::Answer& a, int status_if_degraded) {
        if (a.complete) return text(std::to_string(a.n));
        text(std::to_string(a.n), status_if_degraded, a.why);
    }

    void page() { send(http::Response(200, std::string(kAppPage, sizeof kAppPage - 1), "text/html; charset=utf-8")); }

    Waiters& waiters_;
    ClusterLink* cluster_;
};

}  // namespace comet
