// Subscriber: Redis pub/sub on a connection of its own, kept subscribed.
//
//   redis::Subscriber sub(opts, {"news"},
//       [](const redis::Message& m) { ... m.channel, m.payload ... },
//       [](bool up, const std::string& why) { log(up ? "subscribed" : why) });
//   (void)sub.wait_subscribed(Deadline::after(1s));
//
// A fiber of its own reads the messages and hands each to on_message, in
// order, on this thread (keep it short: the next message waits for it).
// When the connection is lost -- Redis restarted, killed, unreachable -- it
// reconnects with the Client's backoff and subscribes to every channel
// again; on_state says when it went down (with why) and when it is back,
// once per change.
// Messages published while it was down are lost (pub/sub keeps none), which
// is why on_state exists. A silent connection is PINGed every ping_interval,
// and dropped when the PONG does not come within another, so a half-open
// connection (a host gone, not just the process) is noticed too.
//
// Not thread-safe: construct, subscribe() and destroy it on one thread.
#pragma once

#include "tendril/net/redis/client.hpp"
#include "tendril/net/redis/connection.hpp"
#include "tendril/sched/event.hpp"
#include "tendril/sched/fiber.hpp"
#include "tendril/sched/mutex.hpp"

#include <functional>
#include <string>
#include <vector>

namespace tendril::redis {

struct Message {
    std::string channel;
    std::string payload;
};

class Subscriber {
public:
    using OnMessage = std::function<void(const Message&)>;
    using OnState = std::function<void(bool up, const std::string& why)>;

    Subscriber(ClientOptions options, std::vector<std::string> channels, OnMessage on_message,
               OnState on_state = {}, Duration ping_interval = std::chrono::seconds(5));
    ~Subscriber();
    Subscriber(const Subscriber&) = delete;
    Subscriber& operator=(const Subscriber&) = delete;

    // Add a channel: now, if connected, and after every reconnect.
    void subscribe(const std::string& channel);
    // Subscribed, on a live connection, to every channel it had when it
    // (re)connected.
    bool subscribed() const { return up_.is_set(); }
    // ok once subscribed (at once if it is), timeout or cancelled.
    [[nodiscard]] Status wait_subscribed(Deadline deadline = {}) { return up_.wait(deadline); }
    // Connections opened so far (1 + reconnects).
    std::uint64_t connects() const { return connects_; }
    // Why it is not subscribed, while it is not.
    const std::string& last_error() const { return error_; }
    // Stop reading and close; joins the fiber. Called by the destructor.
    void stop();

private:
    void run();
    bool serve();  // one connection's life; true if it got subscribed
    Status send(const Commands& commands);
    void handle(const Reply& reply);
    void set_up();
    bool set_down(const std::string& why);  // closes; true if it was up
    void report(bool up, const std::string& why);

    ClientOptions options_;
    std::vector<std::string> channels_;
    OnMessage on_message_;
    OnState on_state_;
    Duration ping_interval_;
    Connection conn_;
    Mutex write_mutex_;    // the reader fiber and subscribe() both write
    Event up_;
    std::size_t pending_confirms_ = 0;  // subscribe confirmations still due on this connection
    std::string error_;
    std::uint64_t connects_ = 0;
    bool stopping_ = false;
    bool reported_ = false, reported_up_ = false;  // the last state on_state was told
    FiberHandle fiber_;
};

}  // namespace tendril::redis
