// ConnectionLimit: at most N connections open at once, counted across every
// server that shares the limit -- the servers of all threads of a process,
// so that `--max-connections 1000 --threads 4` means 1000, not 4000.
//
// At the limit a server stops calling accept(): new clients wait in the
// kernel's listen backlog (their connect() has succeeded) and are taken as
// soon as a connection closes. Accepting and closing them at once instead
// would turn an overload into a storm of resets that the clients retry.
// A paused accept loop parks on an Event of its own that release() sets,
// from whichever thread the closing connection lives on.
//
// The pause is logged once and the resumption once, not per connection: at
// a saturated limit every close resumes and the next client pauses again, so
// after a logged pause further ones stay quiet for 10 s (counted, and the
// count goes into the next line); a quiet pause that is still on when the
// 10 s are over is logged then, so the log never says "accepting again"
// while nothing is accepted.
#pragma once

#include "tendril/core/time.hpp"
#include "tendril/sched/event.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace tendril {

class ConnectionLimit {
public:
    // max: at least 1 (with 0 nothing would ever be accepted). `server`
    // and `setting` only name things in the log lines:
    // "hello: 1000 connections open (--max-connections 1000): not accepting
    // until one closes".
    explicit ConnectionLimit(std::size_t max, std::string server = "server", std::string setting = "max_connections");
    ConnectionLimit(const ConnectionLimit&) = delete;
    ConnectionLimit& operator=(const ConnectionLimit&) = delete;

    std::size_t max() const { return max_; }
    // Connections holding a slot now.
    std::size_t open() const { return open_.load(std::memory_order_relaxed); }
    // How many times an accept loop has had to wait for a slot.
    std::uint64_t pauses() const { return pauses_.load(std::memory_order_relaxed); }

    // A slot if one is free now.
    bool try_acquire();
    // A slot, waiting for one as long as it takes: true with the slot, false
    // once `stopping` is true (checked whenever `room` is set: whoever sets
    // stopping sets room too). `room` belongs to the caller, one per accept
    // loop; release() sets it while the loop waits.
    bool acquire(Event& room, const bool& stopping);
    // A connection that held a slot has closed. Any thread.
    void release();

private:
    // A log line decided under the lock and written after it.
    enum class Line : std::uint8_t { none, paused, resumed };
    struct Note {
        Line line = Line::none;
        std::size_t open = 0;
        std::uint64_t quiet_pauses = 0;  // paused: the pauses kept out of the log before it
        double seconds = 0;              // resumed: since the pause was logged
    };
    Note pause_begins(Instant now, Deadline* quiet_until);
    Note pause_still_on(Instant now, Deadline* quiet_until);
    Note say_paused(Instant now);
    Note pause_ends(Instant now, bool with_slot);
    void write(const Note& note);

    const std::size_t max_;
    const std::string server_, setting_;
    std::atomic<std::size_t> open_{0};
    std::atomic<std::uint64_t> pauses_{0};
    // Paused accept loops, so that release() skips the lock when there are none.
    std::atomic<int> waiting_{0};

    std::mutex mutex_;
    std::vector<Event*> rooms_;  // of the paused loops
    // The log's state (see the top of the file).
    bool said_paused_ = false;   // the last line said "not accepting"
    Instant said_at_{};          // when it did
    Instant quiet_until_{};      // no pause line before this
    std::uint64_t quiet_pauses_ = 0;
};

}  // namespace tendril
