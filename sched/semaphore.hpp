// Semaphore: a counter of permits; acquire() waits for one (FIFO), release()
// hands permits straight to waiters. Bounds concurrency (e.g. at most N
// fibers in a blocking library at once). Thread-safe.
#pragma once

#include "tendril/core/spin_lock.hpp"
#include "tendril/sched/scheduler.hpp"
#include "tendril/sched/wait_queue.hpp"

#include <mutex>

namespace tendril {

class Semaphore {
public:
    explicit Semaphore(std::size_t permits = 0) : count_(permits) {}
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    // ok (a permit is held), timeout or cancelled.
    [[nodiscard]] Status acquire(Deadline deadline = {}) {
        std::unique_lock<SpinLock> held(lock_);
        if (count_ > 0 && waiters_.empty()) {
            --count_;
            return Status::ok;
        }
        return wait_in(waiters_, held, "semaphore", this, deadline);
    }
    bool try_acquire() {
        std::lock_guard<SpinLock> held(lock_);
        if (count_ == 0 || !waiters_.empty()) return false;
        --count_;
        return true;
    }
    void release(std::size_t n = 1) {
        PendingWakes wakes;
        std::lock_guard<SpinLock> held(lock_);
        for (; n > 0; --n) {
            WaitNode* w = waiters_.pop_claimed();
            if (!w) break;
            wakes.add(w, Status::ok);
        }
        count_ += n;
    }
    std::size_t available() const {
        std::lock_guard<SpinLock> held(lock_);
        return count_;
    }

private:
    mutable SpinLock lock_;
    std::size_t count_;
    WaitQueue waiters_{&lock_};
};

}  // namespace tendril
