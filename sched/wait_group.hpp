// WaitGroup: wait for a set of fibers to finish (Go's sync.WaitGroup).
// Thread-safe: done() may come from fibers of other schedulers.
#pragma once

#include "tendril/core/fatal.hpp"
#include "tendril/core/spin_lock.hpp"
#include "tendril/sched/scheduler.hpp"
#include "tendril/sched/wait_queue.hpp"

#include <mutex>

namespace tendril {

class WaitGroup {
public:
    WaitGroup() = default;
    WaitGroup(const WaitGroup&) = delete;
    WaitGroup& operator=(const WaitGroup&) = delete;

    void add(long n = 1) {
        PendingWakes wakes;
        std::lock_guard<SpinLock> held(lock_);
        count_ += n;
        if (count_ < 0) fatal("WaitGroup: negative counter");
        if (count_ == 0)
            while (WaitNode* w = waiters_.pop_claimed()) wakes.add(w, Status::ok);
    }
    void done() { add(-1); }
    long count() const {
        std::lock_guard<SpinLock> held(lock_);
        return count_;
    }
    // ok once the counter is zero; timeout or cancelled.
    [[nodiscard]] Status wait(Deadline deadline = {}) {
        std::unique_lock<SpinLock> held(lock_);
        if (count_ == 0) return Status::ok;
        return wait_in(waiters_, held, "wait group", this, deadline);
    }

private:
    mutable SpinLock lock_;
    long count_ = 0;
    WaitQueue waiters_{&lock_};
};

}  // namespace tendril
