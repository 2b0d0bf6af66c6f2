// Fiber: the record of one green thread, and FiberHandle, the user's grip on it.
//
// The record lives on the heap and holds everything another fiber or the
// scheduler may need while the fiber is parked (its wait node, its deadline
// timer, its name), so that its stack can be compacted away meanwhile. The
// fiber's function object itself is placed at the top of its own stack: no
// allocation beyond the record and a pooled stack.
#pragma once

#include "tendril/core/stack_pool.hpp"
#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/sched/timer_heap.hpp"
#include "tendril/sched/wait_queue.hpp"

#include <cstdint>
#include <string_view>

namespace tendril {

class Scheduler;

enum class FiberState : std::uint8_t { runnable, running, parked, done };
const char* to_string(FiberState s) noexcept;

struct FiberOptions {
    std::string_view name = {};  // copied; shown in dumps and fatal reports
    std::size_t stack_size = 0;  // 0: the scheduler's default
    int guard = -1;              // -1: the scheduler's default; 0 or 1 to choose
};

struct Fiber {
    static constexpr std::size_t kNameMax = 40;

    // Scheduling.
    Fiber* run_next = nullptr;
    Scheduler* sched = nullptr;
    void* ctx = nullptr;  // saved context (its stack pointer) while not running
    FiberState state = FiberState::runnable;
    Status wake_status = Status::ok;
    bool cancel_requested = false;
    bool compacted = false;      // stack reclaimed while parked
    bool in_reclaim_list = false;
    std::uint16_t shield_depth = 0;  // CancelShield nesting
    std::uint16_t pin_depth = 0;     // StackPin nesting

    // Waiting: what to undo if the wait ends by timeout or cancellation.
    const char* wait_reason = nullptr;
    const void* wait_object = nullptr;
    void (*wait_unlink)(Fiber*) = nullptr;
    WaitNode node;
    TimerNode timer;
    Instant deadline = Instant::max();  // of the current wait (the heap entry may be earlier)
    Instant parked_at{};
    Fiber* reclaim_prev = nullptr;
    Fiber* reclaim_next = nullptr;

    // Life.
    Fiber* all_prev = nullptr;
    Fiber* all_next = nullptr;
    WaitQueue joiners;
    std::uint32_t refs = 1;  // 1 while running + one per FiberHandle
    std::uint64_t id = 0;
    Stack stack;
    StackPool* pool = nullptr;
    void (*invoke)(void*) = nullptr;
    void* callable = nullptr;
    void* eh_globals[2] = {nullptr, nullptr};  // the C++ runtime's per-thread exception state
    void* sanitizer_fake_stack = nullptr;
    char name[kNameMax] = {};
};

// The unlink callback for a fiber waiting with its own node in a WaitQueue.
inline void unlink_wait_node(Fiber* f) {
    if (f->node.queue) f->node.queue->remove(&f->node);
}

// A reference to a fiber; copies share it. The fiber runs on whether or not
// any handle exists (go() may be called and its handle dropped).
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
