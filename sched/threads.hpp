// ThreadGroup and run_threads(): one Scheduler per OS thread, Go's
// GOMAXPROCS without work stealing.
//
//   tendril::run_threads(0, [](unsigned index) {   // 0: one thread per CPU
//       ... this thread's listener, server, fibers ...
//   });
//
// Each thread has its own Scheduler, poller and stack pool; fibers never
// migrate. fn(index) runs in a fiber named "main" on every thread once all
// the schedulers exist, and the call returns when every thread has run out
// of fibers. The calling thread is thread 0 (so n = 1 runs exactly like
// tendril::run()).
//
// What crosses threads: Channel, Mutex, CondVar, Semaphore, Event,
// WaitGroup, FiberHandle, Scheduler::post() and the group's post_to() /
// post_all(). Everything else -- sockets, listeners, servers, Timers --
// belongs to the thread that made it; to act on another thread's server,
// post the action there (as the apps do for a graceful stop).
#pragma once

#include "tendril/sched/scheduler.hpp"

#include <functional>
#include <memory>
#include <vector>

namespace tendril {

// The CPUs this process may run on (its affinity mask), at least 1.
unsigned cpu_count() noexcept;

class ThreadGroup {
public:
    // n threads (0: cpu_count()), each with a Scheduler made from options.
    explicit ThreadGroup(unsigned n, SchedulerOptions options = {});
    ~ThreadGroup();
    ThreadGroup(const ThreadGroup&) = delete;
    ThreadGroup& operator=(const ThreadGroup&) = delete;

    // Start the other threads, run fn(index) in a fiber on each (the caller
    // is index 0), and return once every scheduler has finished.
    void run(std::function<void(unsigned index)> fn);

    unsigned size() const noexcept { return n_; }
    // While run() runs: thread i's scheduler (for post()).
    Scheduler& scheduler(unsigned i);
    // Run fn in a new fiber on thread i / on every thread. Thread-safe; a
    // thread that has already finished ignores it.
    void post_to(unsigned i, std::function<void()> fn);
    void post_all(const std::function<void()>& fn);
    // The group whose run() the calling thread is in, or nullptr.
    static ThreadGroup* current() noexcept;

private:
    struct Shared;
    unsigned n_;
    SchedulerOptions options_;
    std::unique_ptr<Shared> shared_;
};

// ThreadGroup(n, options).run(fn).
void run_threads(unsigned n, std::function<void(unsigned index)> fn, SchedulerOptions options = {});

}  // namespace tendril
