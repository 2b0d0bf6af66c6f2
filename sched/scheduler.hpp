// Scheduler: one per thread, running fibers over the poller.
//
// The loop (run()):
//   1. run every fiber that is ready, once each, in FIFO order;
//   2. poll for I/O, with a timeout of zero if fibers became ready meanwhile,
//      else until the next timer, else forever; mark descriptors ready and
//      queue the fibers parked on them;
//   3. fire due timers (deadlines, sleeps), take what other threads sent
//      (wakes of fibers parked on shared channels and locks, posted work);
//   4. compact the stacks of fibers parked longer than reclaim_after.
// It returns when no fiber is left. The loop switches to the first fiber of
// step 1; a fiber that parks or yields switches straight to the next one,
// and only the last (or one that ends: the loop frees its stack) goes back
// to the loop's own context. One switch per wake, not two through a
// trampoline; SchedulerCore's enter()/leave() are the one place that swaps
// exception state, core/context.hpp's switch_context() the one that swaps
// stacks and sanitizer state.
//
// Threads: a Scheduler, its fibers, sockets, Timers and servers belong to the
// thread that runs it. What may cross threads is said where it is declared:
// post() here; Channel, Mutex, CondVar, Semaphore, Event and WaitGroup (any
// fiber of any scheduler, and try_send()/set()/done() from plain threads);
// FiberHandle. run_threads() (sched/threads.hpp) starts one scheduler per
// thread. This class is the public face; its workings are in
// sched/detail/scheduler_core.hpp.
#pragma once

#include "tendril/core/stack_pool.hpp"
#include "tendril/core/time.hpp"
#include "tendril/sched/fiber.hpp"
#include "tendril/sched/timer_heap.hpp"
#include "tendril/sched/wait_queue.hpp"

#include <functional>
#include <memory>
#include <new>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace tendril {

class LogWriter;
namespace detail {
class SchedulerCore;
}

// What to do with the stacks of fibers that stay parked.
enum class StackReclaim : std::uint8_t {
    none,     // keep every touched page
    trim,     // drop the pages below the parked stack pointer
    compact,  // copy the live bytes out and drop every page (guarded stacks)
};

struct SchedulerOptions {
    StackOptions stack{};
    StackReclaim reclaim = StackReclaim::compact;
    Duration reclaim_after = std::chrono::milliseconds(20);
};

class Scheduler {
public:
    explicit Scheduler(SchedulerOptions options = {});
    // Remaining fibers are cancelled and run until they finish.
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    // The scheduler of the calling thread, or nullptr.
    static Scheduler* current() noexcept;
    // The fiber running on this thread, or nullptr in scheduler context.
    static Fiber* current_fiber() noexcept;

    template <class F>
    FiberHandle go(F&& fn, const FiberOptions& options = {});

    // Run until no fiber is left (or stop() is called).
    void run();
    // Make run() return after the current round; parked fibers stay parked.
    void stop() noexcept;

    // Thread-safe: run fn in a new fiber on this scheduler's thread.
    void post(std::function<void()> fn);

    // Keeps run() from declaring a deadlock while something outside the
    // scheduler (another thread, a signal) may still wake a fiber.
    class Hold {
    public:
        explicit Hold(Scheduler& s);
        ~Hold();
        Hold(const Hold&) = delete;
        Hold& operator=(const Hold&) = delete;

    private:
        Scheduler* s_;
    };

    // --- timers and the clock ------------------------------------------------
    TimerHeap& timers();
    Instant now() const;  // as of the current loop round
    // A deadline d from now, by the loop's clock (no clock read; off by at
    // most the time since the loop last polled). For the hot paths.
    Deadline deadline_after(Duration d) const;

    // --- introspection -----------------------------------------------------
    std::size_t live_fibers() const;
    const SchedulerOptions& options() const;
    void set_reclaim(StackReclaim r, Duration after);
    // Every live fiber: id, name, state, what it waits on. Also on SIGQUIT.
    void dump(int fd = 2) const;
    struct Counters {
        std::uint64_t switches = 0;
        std::uint64_t polls = 0;
        std::uint64_t reclaimed = 0;
        std::uint64_t restored = 0;
        std::uint64_t remote_wakes = 0;  // fibers woken from another thread
        std::uint64_t inbox_batches = 0;  // times those arrived (each one poller wake-up at most)
    };
    const Counters& counters() const;
    // This scheduler's stderr buffer (core/log.hpp's log_write() uses it).
    LogWriter& log_writer();
    // "epoll" or "kqueue": the poller backend this build uses.
    static const char* poller_backend() noexcept;

    // The workings, for the library's own primitives (sched/detail/).
    detail::SchedulerCore& core() { return *core_; }
    const detail::SchedulerCore& core() const { return *core_; }

private:
    // go()'s non-template half: a fiber with room for its function object
    // (size, align) at its stack top; start() queues it once that is built.
    struct NewFiber {
        Fiber* fiber;
        void* callable;
    };
    NewFiber prepare(const FiberOptions& options, std::size_t size, std::size_t align);
    FiberHandle start(NewFiber f, void (*invoke)(void*));

    std::unique_ptr<detail::SchedulerCore> core_;
    Scheduler* prev_current_ = nullptr;  // nested schedulers on one thread
    detail::SchedulerCore* prev_core_ = nullptr;
};

template <class F>
FiberHandle Scheduler::go(F&& fn, const FiberOptions& options) {
    using Fn = std::decay_t<F>;
    static_assert(std::is_invocable_v<Fn&>, "go() takes a callable with no arguments");
    NewFiber f = prepare(options, sizeof(Fn), alignof(Fn));
    ::new (f.callable) Fn(std::forward<F>(fn));
    return start(f, [](void* p) {
        Fn& call = *static_cast<Fn*>(p);
        struct Destroy {
            Fn& fn;
            ~Destroy() { fn.~Fn(); }
        } destroy{call};
        call();
    });
}

// --- the free-function surface (Go's, gevent's) ------------------------------

// Spawn on the calling thread's scheduler.
template <class F>
FiberHandle go(F&& fn, const FiberOptions& options = {}) {
    Scheduler* s = Scheduler::current();
    if (!s) throw std::logic_error("tendril::go: no Scheduler on this thread");
    return s->go(std::forward<F>(fn), options);
}

// Let every other ready fiber run once.
void yield();
// ok, or cancelled.
Status sleep_for(Duration d);
Status sleep_until(Deadline deadline);

// Make a Scheduler on this thread, run fn in a fiber, return when all fibers end.
template <class F>
void run(F&& fn, SchedulerOptions options = {}) {
    Scheduler s(options);
    s.go(std::forward<F>(fn), FiberOptions{"main"});
    s.run();
}

namespace this_fiber {
std::uint64_t id();
const char* name();
void set_name(std::string_view name);
// True once cancel() was called on this fiber (and no CancelShield is active).
bool cancelled();
}  // namespace this_fiber

// While alive, the current fiber's waits ignore cancellation (cleanup that
// must finish, such as writing a final response).
class CancelShield {
public:
    CancelShield();
    ~CancelShield();
    CancelShield(const CancelShield&) = delete;
    CancelShield& operator=(const CancelShield&) = delete;

private:
    Fiber* f_;
};

// While alive, the current fiber's stack is never compacted: needed when
// another thread reads or writes this fiber's frame while it is parked.
class StackPin {
public:
    StackPin();
    ~StackPin();
    StackPin(const StackPin&) = delete;
    StackPin& operator=(const StackPin&) = delete;

private:
    Fiber* f_;
};

}  // namespace tendril
