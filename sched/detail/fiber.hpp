// Fiber: the record of one green thread (internal; not installed).
//
// The record lives on the heap and holds everything another fiber, another
// thread or the scheduler may need while the fiber is parked (its wait node,
// its deadline timer, its name), so that its stack can be compacted away
// meanwhile. The fiber's function object itself is placed at the top of its
// own stack: no allocation beyond the record and a pooled stack.
//
// Thread rules: everything here belongs to the fiber's scheduler thread,
// except `state` and `refs` (atomics: FiberHandles on other threads read and
// count them) and `joiners` (guarded by joiners_lock).
#pragma once

#include "tendril/core/intrusive_list.hpp"
#include "tendril/core/spin_lock.hpp"
#include "tendril/core/stack_pool.hpp"
#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/sched/fiber.hpp"
#include "tendril/sched/timer_heap.hpp"
#include "tendril/sched/wait_queue.hpp"

#include <atomic>
#include <cstdint>

namespace tendril {

namespace detail {
class SchedulerCore;
}

struct Fiber {
    static constexpr std::size_t kNameMax = 40;

    // Scheduling.
    ListHook<Fiber> run_hook;  // the run queue
    detail::SchedulerCore* sched = nullptr;
    void* ctx = nullptr;  // saved context (its stack pointer) while not running
    std::atomic<FiberState> state{FiberState::runnable};
    Status wake_status = Status::ok;
    bool cancel_requested = false;
    bool compacted = false;          // stack reclaimed while parked
    bool reclaimed = false;          // this park's stack was reclaimed (compacted or trimmed)
    std::uint8_t reclaim_level = 0;  // reclaimed after reclaim_after << level (SchedulerCore::ready says why)
    std::uint16_t shield_depth = 0;  // CancelShield nesting
    std::uint16_t pin_depth = 0;     // StackPin nesting

    // Waiting: what to undo if the wait ends by timeout or cancellation.
    // unlink returns false when a waker has already claimed the wait (its
    // wake is on the way and must be waited for).
    const char* wait_reason = nullptr;
    const void* wait_object = nullptr;
    bool (*wait_unlink)(Fiber*) = nullptr;
    std::uint64_t wait_seq = 0;  // counts parks; a wake posted from another thread names one
    WaitNode node;
    TimerNode timer;
    Instant deadline = Instant::max();  // of the current wait (the heap entry may be earlier)
    Instant parked_at{};
    ListHook<Fiber> reclaim_hook;  // parked, stack not yet reclaimed

    // Life.
    ListHook<Fiber> all_hook;
    SpinLock joiners_lock;
    WaitQueue joiners{&joiners_lock};
    std::atomic<std::uint32_t> refs{1};  // 1 while running + one per FiberHandle
    std::uint64_t id = 0;
    Stack stack;
    StackPool* pool = nullptr;
    void (*invoke)(void*) = nullptr;
    void* callable = nullptr;
    void* eh_globals[2] = {nullptr, nullptr};  // the C++ runtime's per-thread exception state
    void* sanitizer_fake_stack = nullptr;      // ASan
    void* tsan_fiber = nullptr;                // ThreadSanitizer's record of this context
    char name[kNameMax] = {};

    FiberState get_state() const { return state.load(std::memory_order_relaxed); }
    void set_state(FiberState s) { state.store(s, std::memory_order_release); }
};

// The unlink callback for a fiber waiting with its own node in a WaitQueue.
bool unlink_wait_node(Fiber* f);

}  // namespace tendril
