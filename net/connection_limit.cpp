// ConnectionLimit (see connection_limit.hpp for what the log says when).
#include "tendril/net/connection_limit.hpp"

#include "tendril/core/log.hpp"

#include <algorithm>

namespace tendril {

namespace {
// After a logged pause, further pauses stay out of the log this long.
constexpr Duration kQuietPeriod = std::chrono::seconds(10);
}  // namespace

ConnectionLimit::ConnectionLimit(std::size_t max, std::string server, std::string setting)
    : max_(max), server_(std::move(server)), setting_(std::move(setting)) {}

bool ConnectionLimit::try_acquire() {
    std::size_t n = open_.load();
    while (n < max_)
        if (open_.compare_exchange_weak(n, n + 1)) return true;
    return false;
}

void ConnectionLimit::release() {
    // Sequentially consistent with acquire()'s `waiting_` increment and its
    // try_acquire() after it: either the waiter sees the freed slot, or we
    // see the waiter and wake it.
    open_.fetch_sub(1);
    if (waiting_.load() == 0) return;
    std::lock_guard<std::mutex> lock(mutex_);
    for (Event* room : rooms_) room->set();
}

bool ConnectionLimit::acquire(Event& room, const bool& stopping) {
    if (stopping) return false;
    if (try_acquire()) return true;
    pauses_.fetch_add(1, std::memory_order_relaxed);
    Deadline quiet_until;  // when a pause kept out of the log may be logged after all
    Note note;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        rooms_.push_back(&room);
        waiting_.fetch_add(1);
        note = pause_begins(Clock::now(), &quiet_until);
    }
    write(note);
    bool got = false;
    for (;;) {
        room.clear();  // before looking: a release() from now on sets it again
        if (stopping) break;
        if (try_acquire()) {
            got = true;
            break;
        }
        Status st = room.wait(quiet_until);
        if (st == Status::cancelled) break;
        if (st == Status::timeout) {
            {
                std::lock_guard<std::mutex> lock(mutex_);
                note = pause_still_on(Clock::now(), &quiet_until);
            }
            write(note);
        }
    }
    {
        std::lock_guard<std::mutex> lock(mutex_);
        rooms_.erase(std::find(rooms_.begin(), rooms_.end(), &room));
        waiting_.fetch_sub(1);
        note = pause_ends(Clock::now(), got);
    }
    write(note);
    return got;
}

ConnectionLimit::Note ConnectionLimit::pause_begins(Instant now, Deadline* quiet_until) {
    if (said_paused_) return {};  // another accept loop (thread) has said so already
    if (now < quiet_until_) {
        ++quiet_pauses_;
        *quiet_until = Deadline::at(quiet_until_);
        return {};
    }
    return say_paused(now);
}

ConnectionLimit::Note ConnectionLimit::pause_still_on(Instant now, Deadline* quiet_until) {
    *quiet_until = Deadline::never();
    if (said_paused_) return {};
    if (now < quiet_until_) {
        *quiet_until = Deadline::at(quiet_until_);
        return {};
    }
    if (quiet_pauses_ > 0) --quiet_pauses_;  // this one is logged now
    return say_paused(now);
}

ConnectionLimit::Note ConnectionLimit::say_paused(Instant now) {
    Note note{Line::paused, open(), quiet_pauses_, 0};
    said_paused_ = true;
    said_at_ = now;
    quiet_until_ = now + kQuietPeriod;
    quiet_pauses_ = 0;
    return note;
}

ConnectionLimit::Note ConnectionLimit::pause_ends(Instant now, bool with_slot) {
    // Accepting again means every paused loop is: the last one to leave says so.
    if (!said_paused_ || waiting_.load() > 0) return {};
    said_paused_ = false;
    if (!with_slot) return {};  // the server is stopping: it accepts nothing more
    return {Line::resumed, open(), 0, std::chrono::duration<double>(now - said_at_).count()};
}

void ConnectionLimit::write(const Note& note) {
    if (note.line == Line::paused) {
        const char* s = note.open == 1 ? "" : "s";
        if (note.quiet_pauses)
            TENDRIL_LOG(LogLevel::warning, "%s: %zu connection%s open (%s %zu): not accepting until one closes "
                        "(%llu shorter pause(s) since the last such line)", server_.c_str(), note.open, s,
                        setting_.c_str(), max_, static_cast<unsigned long long>(note.quiet_pauses));
        else
            TENDRIL_LOG(LogLevel::warning, "%s: %zu connection%s open (%s %zu): not accepting until one closes",
                        server_.c_str(), note.open, s, setting_.c_str(), max_);
    } else if (note.line == Line::resumed) {
        TENDRIL_LOG(LogLevel::warning, "%s: accepting connections again after %.1f s (%zu open, %s %zu)",
                    server_.c_str(), note.seconds, note.open, setting_.c_str(), max_);
    }
}

}  // namespace tendril
