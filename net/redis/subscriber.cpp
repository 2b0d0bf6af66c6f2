#include "tendril/net/redis/subscriber.hpp"

#include "tendril/sched/scheduler.hpp"

#include <mutex>

namespace tendril::redis {

Subscriber::Subscriber(ClientOptions options, std::vector<std::string> channels, OnMessage on_message,
                       OnState on_state, Duration ping_interval)
    : options_(std::move(options)),
      channels_(std::move(channels)),
      on_message_(std::move(on_message)),
      on_state_(std::move(on_state)),
      ping_interval_(ping_interval) {
    fiber_ = go([this] { run(); }, FiberOptions{"redis-subscriber"});
}

Subscriber::~Subscriber() { stop(); }

void Subscriber::stop() {
    if (stopping_) return;
    stopping_ = true;
    fiber_.cancel();
    CancelShield shield;  // a stop during a cancellation still waits for the fiber
    (void)fiber_.join();
    conn_.close();
    up_.clear();
}

void Subscriber::report(bool up, const std::string& why) {
    // Changes only: one line when it goes down, one when it is back.
    if (stopping_ || (reported_ && reported_up_ == up)) return;
    reported_ = true;
    reported_up_ = up;
    if (on_state_) on_state_(up, why);
}

bool Subscriber::set_down(const std::string& why) {
    bool was_up = up_.is_set();
    error_ = why;
    up_.clear();
    conn_.close();
    report(false, why);
    return was_up;
}

void Subscriber::set_up() {
    error_.clear();
    up_.set();
    report(true, std::string());
}

void Subscriber::run() {
    Backoff backoff(options_);
    while (!stopping_ && !this_fiber::cancelled()) {
        auto c = Connection::open(options_.host, options_.port, Deadline::after(options_.connect_timeout));
        if (c) {
            conn_ = std::move(c.value);
            ++connects_;
            if (serve()) backoff.reset();  // it was up: the first retry comes soon
        } else {
            error_ = c.value.last_error();
            report(false, error_);
        }
        if (stopping_ || this_fiber::cancelled()) break;
        (void)sleep_for(backoff.next_delay());
    }
}

Status Subscriber::send(const Commands& commands) {
    if (!conn_.is_open()) return Status::closed;
    std::lock_guard<Mutex> held(write_mutex_);
    return conn_.send(commands, Deadline::after(ping_interval_));
}

bool Subscriber::serve() {
    pending_confirms_ = channels_.size();
    if (!channels_.empty()) {
        std::vector<std::string> args{"SUBSCRIBE"};
        args.insert(args.end(), channels_.begin(), channels_.end());
        Commands cmd;
        cmd.add(args);
        if (send(cmd) != Status::ok) return set_down(conn_.last_error());
    } else {
        set_up();  // nothing to confirm
    }
    bool ping_out = false;
    while (!stopping_) {
        auto r = conn_.wait_reply(Deadline::after(ping_interval_));
        if (r.status == Status::timeout) {
            if (ping_out) {
                return set_down("redis " + conn_.name() + ": no answer to PING within " +
                                std::to_string(static_cast<long>(to_ms(ping_interval_))) + " ms");
            }
            if (send(Commands{"PING"}) != Status::ok) return set_down(conn_.last_error());
            ping_out = true;
            continue;
        }
        if (!r) return set_down(conn_.last_error());
        ping_out = false;
        handle(r.value);
    }
    return set_down("stopped");
}

void Subscriber::handle(const Reply& reply) {
    if (reply.is_error()) {  // e.g. NOAUTH: say so (once), keep the connection
        error_ = "redis " + conn_.name() + ": " + reply.str;
        if (!up_.is_set()) report(false, error_);
        return;
    }
    if (reply.is_array() && reply.elements.size() >= 3 && reply.elements[0].str == "message") {
        if (on_message_) on_message_(Message{reply.elements[1].str, reply.elements[2].str});
        return;
    }
    bool confirm = reply.is_array() && !reply.elements.empty() && reply.elements[0].str == "subscribe";
    if (confirm && pending_confirms_ > 0 && --pending_confirms_ == 0 && !up_.is_set()) set_up();
    // Anything else ("pong", a confirmation of a later subscribe()) needs nothing.
}

void Subscriber::subscribe(const std::string& channel) {
    for (const std::string& c : channels_)
        if (c == channel) return;
    channels_.push_back(channel);
    if (!conn_.is_open() || stopping_) return;  // the next connection subscribes to it
    if (!up_.is_set()) ++pending_confirms_;     // up once this one is confirmed too
    if (send(Commands{"SUBSCRIBE", channel}) != Status::ok) conn_.close();  // the reader notices, reconnects
}

}  // namespace tendril::redis
