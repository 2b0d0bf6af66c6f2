// The comet handler and its shared state (see main.cpp for the protocol).
// A header of its own so the c10k benchmark can run this very server inside
// its own process (--same-process), as the seed's test did.
#pragma once

#include <tendril/http/server.hpp>
#include <tendril/http/url.hpp>
#include <tendril/sched/channel.hpp>
#include <tendril/sched/select.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace comet {

using namespace tendril;
using tendril::http::BaseHTTPRequestHandler;

inline const char kAppPage[] =
#include "comet/app.html.inc"
    ;

// The waiters registered right now; shared by every connection.
class Waiters {
public:
    struct Waiter {
        Waiter* prev = nullptr;
        Waiter* next = nullptr;
        bool listed = false;
        Channel<int> channel{1};  // capacity 1: notify never blocks
    };

    void add(Waiter* w) {
        w->next = head_;
        if (head_) head_->prev = w;
        head_ = w;
        w->listed = true;
        ++count_;
    }
    void remove(Waiter* w) {
        if (!w->listed) return;
        if (w->prev) w->prev->next = w->next;
        else head_ = w->next;
        if (w->next) w->next->prev = w->prev;
        w->prev = w->next = nullptr;
        w->listed = false;
        --count_;
    }
    // Deliver n = the number of waiters to each of them; they leave the list.
    std::size_t notify() {
        std::size_t n = count_;
        while (Waiter* w = head_) {
            remove(w);
            (void)w->channel.try_send(static_cast<int>(n));
        }
        return n;
    }
    // Shutting down: wake every waiter with a closed channel.
    void release_all() {
        while (Waiter* w = head_) {
            remove(w);
            w->channel.close();
        }
    }
    std::size_t count() const { return count_; }

private:
    Waiter* head_ = nullptr;
    std::size_t count_ = 0;
};

class CometHandler : public BaseHTTPRequestHandler {
public:
    explicit CometHandler(Waiters& waiters) : waiters_(waiters) {}

    void do_GET() override {
        std::string_view route = http::target_path(path);
        if (route == "/wait") return wait();
        if (route == "/notify") return text(std::to_string(waiters_.notify()));
        if (route == "/app") return page();
        text(std::to_string(waiters_.count()));
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
        waiters_.add(w.get());
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

    void text(std::string body) {
        http::Response r(200, std::move(body), "text/plain");
        r.headers.add("Cache-Control", "no-store");
        send(r);
    }

    void page() { send(http::Response(200, std::string(kAppPage, sizeof kAppPage - 1), "text/html; charset=utf-8")); }

    Waiters& waiters_;
};

}  // namespace comet
