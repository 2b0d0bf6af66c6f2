// SchedulerCore: the workings behind a Scheduler (internal; not installed).
//
// What the library's own primitives need and users do not: parking and
// readying fibers, the descriptor table and its waits, the inbox through
// which other threads wake fibers and post work, the loop itself. Every
// member belongs to the scheduler's thread except the inbox (post*(),
// wake_poller(), request_dump()), which any thread -- and a signal handler,
// for the last two -- may use.
#pragma once

#include "tendril/core/context.hpp"
#include "tendril/core/intrusive_list.hpp"
#include "tendril/sched/detail/fiber.hpp"
#include "tendril/sched/detail/poller.hpp"
#include "tendril/sched/scheduler.hpp"
#include "tendril/sched/timer_heap.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace tendril {

struct PollDesc;
class PollTable;
class LogWriter;

namespace detail {

class SchedulerCore {
public:
    SchedulerCore(Scheduler& owner, SchedulerOptions options);
    ~SchedulerCore();
    SchedulerCore(const SchedulerCore&) = delete;
    SchedulerCore& operator=(const SchedulerCore&) = delete;

    // The calling thread's, or nullptr.
    static SchedulerCore* current() noexcept;
    static Fiber* current_fiber() noexcept;
    Scheduler& owner() { return owner_; }

    // --- fibers ----------------------------------------------------------------
    Fiber* create_fiber(const FiberOptions& options);
    void* reserve_callable(Fiber* f, std::size_t size, std::size_t align);
    FiberHandle start_fiber(Fiber* f);
    void run();
    void stop() noexcept { stop_requested_ = true; }
    // Cancel the fibers still alive and run until they are gone (the
    // Scheduler's destructor).
    void finish_all();

    // --- waiting ---------------------------------------------------------------
    // Park the running fiber. Its registrations must be in place and
    // `unlink` must be able to undo them if the wait ends by timeout or
    // cancellation -- or report (false) that a waker already claimed the
    // wait, whose wake then ends it. Returns what the waker passed to ready().
    Status park(const char* reason, const void* object, bool (*unlink)(Fiber*), Deadline deadline = {});
    // Make a parked fiber runnable; park() returns `status` in it.
    void ready(Fiber* f, Status status = Status::ok);
    // Before touching a parked fiber's stack (a value it waits to receive).
    void make_resident(Fiber* f);
    // Wake a parked fiber with `status` after undoing its registrations.
    void interrupt(Fiber* f, Status status);
    void cancel(Fiber* f);
    // Put the running fiber at the back of the run queue and switch away.
    void yield_current();
    std::uint32_t random() noexcept;

    // --- from any thread -------------------------------------------------------
    // Run fn in a new fiber here.
    void post(std::function<void()> fn);
    // Run fn in this scheduler's context (not in a fiber; it must not block).
    void post_call(std::function<void()> fn);
    // Wake f from its wait number `seq`: d (owned, may be null) delivers
    // first, with f's stack resident. Batched: one poller wake-up at most
    // per batch the loop takes.
    void post_wake(Fiber* f, std::uint64_t seq, Status status, Delivery* d, void* slot);
    // Thread- and signal-safe.
    void wake_poller() noexcept { poller_.wake(); }
    void request_dump() noexcept {
        dump_requested_.store(true);
        poller_.wake();
    }

    // --- descriptors -----------------------------------------------------------
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
    // Bookkeeping for waits registered outside wait_*() (select's FdCase).
    void io_attached() { ++io_waiters_; }
    void io_detached() { --io_waiters_; }

    // --- timers, clock, introspection ------------------------------------------
    TimerHeap& timers() { return timers_; }
    Instant now() const { return now_; }
    Deadline deadline_after(Duration d) const {
        return d >= Instant::max() - now_ ? Deadline::never() : Deadline::at(now_ + d);
    }
    std::size_t live_fibers() const { return live_; }
    SchedulerOptions& options() { return options_; }
    const Scheduler::Counters& counters() const { return counters_; }
    LogWriter& log_writer() { return *log_writer_; }
    void dump(int fd) const;
    void hold() { ++holds_; }
    void unhold() { --holds_; }

private:
    struct RemoteWake {
        Fiber* fiber;
        std::uint64_t seq;
        Status status;
        Delivery* delivery;
        void* slot;  // where the delivery writes (the claimed node's)
    };
    using FiberList = IntrusiveList<Fiber, &Fiber::run_hook>;

    void switch_to(Fiber* f);
    void enter(Fiber* f);
    void leave(Fiber* f);
    Transfer switch_away(Fiber* f);
    void resumed(Transfer t);
    [[noreturn]] void exit_current();
    static void entry(Transfer t) noexcept;
    void finish(Fiber* f);
    void run_ready();
    Duration poll_timeout();
    void poll_io(Duration timeout);
    void fire_timers();
    void take_inbox();
    void reclaim_parked();
    void check_deadlock() const;
    Status wait_io(PollDesc* pd, WaitNode*& slot, std::uint32_t flags, const char* reason, Deadline deadline);

    Scheduler& owner_;
    SchedulerOptions options_;
    Poller poller_;
    std::unique_ptr<PollTable> polls_;
    std::unique_ptr<LogWriter> log_writer_;
    TimerHeap timers_;
    Instant now_;
    Instant next_trim_{};

    Fiber* running_ = nullptr;
    FiberList run_queue_;
    FiberList batch_;  // the run queue as run_ready() took it
    IntrusiveList<Fiber, &Fiber::all_hook> all_;
    // Parked fibers whose stacks are not reclaimed yet, one list per level
    // (each oldest first, all due after reclaim_after << level).
    static constexpr int kReclaimLevels = 6;
    IntrusiveList<Fiber, &Fiber::reclaim_hook> reclaim_[kReclaimLevels];
    Duration reclaim_delay(int level) const { return options_.reclaim_after * (1 << level); }
    std::size_t live_ = 0;
    std::size_t io_waiters_ = 0;
    std::size_t holds_ = 0;
    std::uint64_t next_id_ = 1;
    std::uint32_t rng_ = 0x9e3779b9u;
    bool stop_requested_ = false;
    Scheduler::Counters counters_;

    void* main_ctx_ = nullptr;
    void* main_eh_[2] = {nullptr, nullptr};
    void* eh_ = nullptr;  // the running thread's C++ exception state (__cxa_get_globals)
    void* main_fake_stack_ = nullptr;
    void* main_tsan_fiber_ = nullptr;
    const void* main_stack_lo_ = nullptr;
    std::size_t main_stack_size_ = 0;

    // The inbox: what other threads hand this scheduler.
    std::mutex inbox_mutex_;
    std::vector<std::function<void()>> posted_;  // each becomes a fiber
    std::vector<std::function<void()>> calls_;
    std::vector<RemoteWake> wakes_;
    std::atomic<bool> inbox_pending_{false};
    std::atomic<bool> dump_requested_{false};
};

}  // namespace detail
}  // namespace tendril
