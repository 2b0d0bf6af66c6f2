// FiberHandle and FiberOptions: the user's grip on a green thread.
//
// The fiber itself (its record: stack, wait node, deadline timer, name) is
// internal (sched/detail/fiber.hpp). A handle is a counted reference to
// that record: copies share it, and the fiber runs on whether or not any
// handle exists (go() may be called and its handle dropped).
#pragma once

#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"

#include <cstdint>
#include <string_view>
#include <utility>

namespace tendril {

struct Fiber;

enum class FiberState : std::uint8_t { runnable, running, parked, done };
const char* to_string(FiberState s) noexcept;

struct FiberOptions {
    std::string_view name = {};  // copied; shown in dumps and fatal reports
    std::size_t stack_size = 0;  // 0: the scheduler's default
    int guard = -1;              // -1: the scheduler's default; 0 or 1 to choose
};

// Thread-safe: a handle may be copied to, and done(), join() and cancel()
// called from, any thread (join() from a fiber of another scheduler parks
// that fiber; the wake crosses threads).
class FiberHandle {
public:
    FiberHandle() = default;
    explicit FiberHandle(Fiber* f);
    FiberHandle(const FiberHandle& o);
    FiberHandle(FiberHandle&& o) noexcept : f_(o.f_) { o.f_ = nullptr; }
    FiberHandle& operator=(FiberHandle o) noexcept {
        std::swap(f_, o.f_);
        return *this;
    }
    ~FiberHandle();

    explicit operator bool() const { return f_ != nullptr; }
    bool done() const;
    std::uint64_t id() const;
    const char* name() const;
    // Wait for the fiber to finish. ok, timeout, or cancelled (the waiter was).
    [[nodiscard]] Status join(Deadline deadline = {});
    // Ask the fiber to stop: if it waits (channel, sleep, I/O, lock) it wakes
    // with Status::cancelled, and so does every later wait, unless shielded.
    void cancel();

private:
    Fiber* f_ = nullptr;
};

}  // namespace tendril
