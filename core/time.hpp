// Monotonic time and Deadline.
//
// Every blocking call in tendril takes a Deadline rather than a timeout, so a
// sequence of calls shares one budget (read the headers within 10 s in total,
// not 10 s per read). A default Deadline never expires.
#pragma once

#include <chrono>
#include <cstdint>

namespace tendril {

using Clock = std::chrono::steady_clock;
using Instant = Clock::time_point;
using Duration = Clock::duration;

using namespace std::chrono_literals;

class Deadline {
public:
    constexpr Deadline() = default;  // never expires

    static constexpr Deadline never() { return Deadline(); }
    static constexpr Deadline at(Instant when) { return Deadline(when); }
    static Deadline after(Duration d) {
        Instant now = Clock::now();  // once: it costs ~30 ns on some VMs
        if (d >= Instant::max() - now) return never();
        return Deadline(now + d);
    }

    constexpr bool is_never() const { return when_ == Instant::max(); }
    constexpr Instant when() const { return when_; }
    bool expired() const { return !is_never() && Clock::now() >= when_; }
    bool expired(Instant now) const { return now >= when_; }
    // Time left; zero once expired, Duration::max() for never.
    Duration remaining() const {
        if (is_never()) return Duration::max();
        auto now = Clock::now();
        return now >= when_ ? Duration::zero() : when_ - now;
    }

    friend constexpr Deadline earliest(Deadline a, Deadline b) {
        return a.when_ <= b.when_ ? a : b;
    }
    friend constexpr bool operator==(Deadline a, Deadline b) = default;

private:
    constexpr explicit Deadline(Instant when) : when_(when) {}
    Instant when_ = Instant::max();
};

// Milliseconds as a double, for reports.
inline double to_ms(Duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace tendril
