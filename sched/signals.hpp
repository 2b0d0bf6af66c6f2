// SignalSet: waiting for POSIX signals in a fiber (SIGINT/SIGTERM for a
// graceful stop), plus the SIGQUIT fiber dump.
//
// The signal handler only sets a pending bit and wakes every scheduler's
// poller (both async-signal-safe); the scheduler loop then wakes the fibers
// waiting for those signals. A signal that arrives while nobody waits stays
// pending for the next wait().
#pragma once

#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/sched/wait_queue.hpp"

#include <cstdint>
#include <initializer_list>

namespace tendril {

class Scheduler;

class SignalSet {
public:
    // Installs handlers for `signals` (process-wide) on first use.
    SignalSet(std::initializer_list<int> signals);
    ~SignalSet();
    SignalSet(const SignalSet&) = delete;
    SignalSet& operator=(const SignalSet&) = delete;

    // The signal that arrived (a positive number), or 0 with `status` set to
    // timeout or cancelled.
    int wait(Deadline deadline = {}, Status* status = nullptr);

private:
    friend void signals_dispatch(Scheduler* s);
    friend bool signals_waiting(const Scheduler* s);
    std::uint64_t mask_ = 0;
    Scheduler* sched_;
    WaitQueue waiters_;
    SignalSet* next_ = nullptr;
};

// Scheduler plumbing.
void signals_register(Scheduler* s);
void signals_unregister(Scheduler* s);
void signals_dispatch(Scheduler* s);
bool signals_waiting(const Scheduler* s);
// Ask every scheduler for a fiber dump (what SIGQUIT does).
void request_dumps() noexcept;

}  // namespace tendril
