// Scheduler: one per thread, running fibers over the poller.
//
// The loop (run()):
//   1. run every fiber that is ready, once each, in FIFO order;
//   2. poll for I/O, with a timeout of zero if fibers became ready meanwhile,
//      else until the next timer, else forever; mark descriptors ready and
//      queue the fibers parked on them;
//   3. fire due timers (deadlines, sleeps), run work posted by other threads;
//   4. compact the stacks of fibers parked longer than reclaim_after.
// It returns when no fiber is left. Every switch goes through the scheduler's
// own context (a trampoline, as Go's g0), so there is exactly one place that
// swaps stacks, sanitizer state and exception state.
//
// Fibers, channels and the sync primitives of one scheduler must be used from
// its thread only; post() is the one thread-safe entry.
#pragma once

#include "tendril/sched/fiber.hpp"
#include "tendril/sched/poller.hpp"
#include "tendril/sched/timer_heap.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace tendril {

struct PollDesc;
class PollTable;
class LogWriter;

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
    void stop() noexcept { stop_requested_ = true; }

    // Thread-safe: run fn in a new fiber on this scheduler's thread.
    void post(std::function<void()> fn);

    // Keeps run() from declaring a deadlock while something outside the
    // scheduler (another thread, a signal) may still wake a fiber.
    class Hold {
    public:
        explicit Hold(Scheduler& s) : s_(&s) { ++s_->holds_; }
        ~Hold() { --s_->holds_; }
        Hold(const Hold&) = delete;
        Hold& operator=(const Hold&) = delete;

    private:
        Scheduler* s_;
    };

    // --- for the things fibers wait on -------------------------------------
    // Park the running fiber. Its registrations must be in place and
    // `unlink` must be able to undo them if the wait ends by timeout or
    // cancellation. Returns what the waker passed to ready().
    Status park(const char* reason, const void* object, void (*unlink)(Fiber*),
                Deadline deadline = {});
    // Make a parked fiber runnable; park() returns `status` in it.
    void ready(Fiber* f, Status status = Status::ok);
    // Before touching a parked fiber's stack (a value it waits to receive).
    void make_resident(Fiber* f);
    // Wake a parked fiber with `status` after undoing its registrations.
    void interrupt(Fiber* f, Status status);
    void cancel(Fiber* f);
    std::uint32_t random() noexcept;

    // --- descriptors -------------------------------------------------------
    PollDesc* poll_open(int fd);
    // Wakes fibers parked on it with Status::closed; the caller closes fd.
    void poll_close(PollDesc* pd);
    // poll_close() for a descriptor that stays open: the poller forgets it.
    void poll_release(PollDesc* pd);
    // Park until pd is readable (writable). Returns at once, without a
    // syscall, when an edge is already pending. ok, timeout, cancelled, closed.
    Status wait_readable(PollDesc* pd, Deadline deadline = {});
    Status wait_writable(PollDesc* pd, Deadline deadline = {});
    Status wait_hangup(PollDesc* pd, Deadline deadline = {});
    Poller& poller() { return poller_; }
    // Bookkeeping for waits registered outside wait_*() (select's FdCase).
    void io_attached();
    void io_detached();
    // Put the running fiber at the back of the run queue and switch away.
    void yield_current();

    // --- timers ------------------------------------------------------------
    TimerHeap& timers() { return timers_; }
    Instant now() const { return now_; }  // as of the current loop round
    // A deadline d from now, by the loop's clock (no clock read; off by at
    // most the time since the loop last polled). For the hot paths.
    Deadline deadline_after(Duration d) const {
        return d >= Instant::max() - now_ ? Deadline::never() : Deadline::at(now_ + d);
    }

    // --- introspection -----------------------------------------------------
    std::size_t live_fibers() const { return live_; }
    const SchedulerOptions& options() const { return options_; }
    void set_reclaim(StackReclaim r, Duration after) {
        options_.reclaim = r;
        options_.reclaim_after = after;
    }
    // This scheduler's stderr buffer (core/log.hpp's log_write() uses it).
    LogWriter& log_writer() { return *log_writer_; }
    // Every live fiber: id, name, state, what it waits on. Also on SIGQUIT.
    void dump(int fd = 2) const;
    struct Counters {
        std::uint64_t switches = 0;
        std::uint64_t polls = 0;
        std::uint64_t reclaimed = 0;
        std::uint64_t restored = 0;
    };
    const Counters& counters() const { return counters_; }

private:
    friend class FiberHandle;
    friend struct FiberEntry;
    friend struct SelectState;

    Fiber* create_fiber(const FiberOptions& options);
    void* reserve_callable(Fiber* f, std::size_t size, std::size_t align);
    FiberHandle start_fiber(Fiber* f);
    void switch_to(Fiber* f);
    [[noreturn]] void exit_current();
    void finish(Fiber* f);
    void release_ref(Fiber* f);
    void run_ready();
    void poll_io(Duration timeout);
    void fire_timers();
    void run_posted();
    void reclaim_parked();
    void unlist_reclaim(Fiber* f);
    void check_deadlock() const;
    void push_ready(Fiber* f);
    Status wait_io(PollDesc* pd, WaitNode*& slot, std::uint32_t flags, const char* reason,
                   Deadline deadline);

    SchedulerOptions options_;
    Poller poller_;
    std::unique_ptr<PollTable> polls_;
    std::unique_ptr<LogWriter> log_writer_;
    TimerHeap timers_;
    Instant now_;
    Instant next_trim_{};

    Fiber* running_ = nullptr;
    Fiber* run_head_ = nullptr;
    Fiber* run_tail_ = nullptr;
    Fiber* all_ = nullptr;
    Fiber* reclaim_head_ = nullptr;
    Fiber* reclaim_tail_ = nullptr;
    std::size_t live_ = 0;
    std::size_t io_waiters_ = 0;
    std::size_t holds_ = 0;
    std::uint64_t next_id_ = 1;
    std::uint32_t rng_ = 0x9e3779b9u;
    bool stop_requested_ = false;
    Counters counters_;

    void* main_ctx_ = nullptr;
    void* main_eh_[2] = {nullptr, nullptr};
    void* main_fake_stack_ = nullptr;
    const void* main_stack_lo_ = nullptr;
    std::size_t main_stack_size_ = 0;

    std::mutex post_mutex_;
    std::vector<std::function<void()>> posted_;
    std::atomic<bool> post_pending_{false};
    std::atomic<bool> dump_requested_{false};
    Scheduler* prev_current_ = nullptr;
    Scheduler* next_registered_ = nullptr;
    friend void request_dumps() noexcept;
};

template <class F>
FiberHandle Scheduler::go(F&& fn, const FiberOptions& options) {
    using Fn = std::decay_t<F>;
    static_assert(std::is_invocable_v<Fn&>, "go() takes a callable with no arguments");
    Fiber* f = create_fiber(options);
    void* mem = reserve_callable(f, sizeof(Fn), alignof(Fn));
    ::new (mem) Fn(std::forward<F>(fn));
    f->callable = mem;
    f->invoke = [](void* p) {
        Fn& call = *static_cast<Fn*>(p);
        struct Destroy {
            Fn& fn;
            ~Destroy() { fn.~Fn(); }
        } destroy{call};
        call();
    };
    return start_fiber(f);
}

// --- the free-function surface (Go's, gevent's) ------------------------------

// Spawn on the calling thread's scheduler.
template <class F>
FiberHandle go(F&& fn, const FiberOptions& options = {}) {
    Scheduler* s = Scheduler::current();
    if (!s) throw std::logic_error("tendril::go: no Scheduler on this thread");
    return s->go(std::forward<F>(fn), options);
}

// Park the current fiber in `queue` (FIFO) until a waker calls wake_node()
// on its node, the deadline passes or it is cancelled. For primitives;
// `slot` is for the waker (the value a channel hands over).
[[nodiscard]] Status wait_in(WaitQueue& queue, const char* reason, const void* object,
                             Deadline deadline = {}, void* slot = nullptr);

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
// another thread writes into this fiber's frame while it is parked.
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
