// Client: commands to one Redis server from any fiber of one thread, over a
// connection it keeps, re-opens, and backs off from while Redis is down.
//
//   redis::Client redis({.host = "127.0.0.1", .port = 6379});
//   auto r = redis.command({"INCR", "hits"}, Deadline::after(500ms));
//   if (!r) log("%s", redis.last_error().c_str());   // Redis down, timeout, ...
//   else if (r->is_error()) ...                       // Redis said no
//   auto all = redis.execute(redis::Commands{"GET", "a"}.add({"GET", "b"}));  // pipelined
//
// Fibers calling at once take turns (a fiber Mutex, waited for under the
// call's Deadline); a pipeline goes out in one write and its replies come
// back in order. When a call fails on the transport the connection is
// dropped (its replies can no longer be matched); the next call reconnects,
// but not sooner than the backoff allows: while Redis is down, calls fail at
// once with Status::closed and a last_error() that says when the next
// attempt is due, instead of each waiting out a connect timeout. The backoff
// doubles from backoff_min to backoff_max and resets on a good connect.
//
// Not thread-safe: a Client belongs to the scheduler (thread) that uses it
// first; give each thread its own.
#pragma once

#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/net/redis/connection.hpp"
#include "tendril/sched/mutex.hpp"

#include <string>
#include <vector>

namespace tendril::redis {

struct ClientOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    Duration connect_timeout = std::chrono::seconds(1);
    Duration backoff_min = std::chrono::milliseconds(100);
    Duration backoff_max = std::chrono::seconds(2);
};

// "HOST:PORT" (a bare "HOST" means port 6379, "[::1]:6379" for IPv6) into
// options; false with why set for anything else.
bool parse_address(std::string_view text, ClientOptions& out, std::string* why = nullptr);

// When to try again after failures in a row: backoff_min doubled per
// failure, at most backoff_max. Shared by Client and Subscriber.
class Backoff {
public:
    explicit Backoff(const ClientOptions& o) : min_(o.backoff_min), max_(o.backoff_max) {}
    Duration next_delay() {
        Duration d = delay_ == Duration::zero() ? min_ : std::min(delay_ * 2, max_);
        delay_ = d;
        return d;
    }
    void reset() { delay_ = Duration::zero(); }

private:
    Duration min_, max_;
    Duration delay_ = Duration::zero();
};

class Client {
public:
    explicit Client(ClientOptions options = {});
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    Result<Reply> command(std::initializer_list<std::string_view> args, Deadline deadline = {});
    Result<Reply> command(const std::vector<std::string>& args, Deadline deadline = {});
    // Every command in one write; one reply each, in order.
    Result<std::vector<Reply>> execute(const Commands& commands, Deadline deadline = {});

    // Connected now (a call may still find the connection gone).
    bool connected() const { return conn_.is_open(); }
    // Why the last failed call failed, in words; empty after a good one.
    const std::string& last_error() const { return error_; }
    const ClientOptions& options() const { return options_; }
    // Connections opened so far (1 + reconnects).
    std::uint64_t connects() const { return connects_; }
    void close() { conn_.close(); }

private:
    Status ensure_connected(Deadline deadline, int* sys_errno);

    ClientOptions options_;
    Connection conn_;
    Mutex mutex_;
    Backoff backoff_;
    Instant retry_at_{};  // no connect attempt before this
    std::string error_;
    std::string down_reason_;  // why the last connect failed
    std::uint64_t connects_ = 0;
};

}  // namespace tendril::redis
