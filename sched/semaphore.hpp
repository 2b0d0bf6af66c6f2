// Semaphore: a counter of permits; acquire() waits for one (FIFO), release()
// hands permits straight to waiters. Bounds concurrency (e.g. at most N
// fibers in a blocking library at once).
#pragma once

#include "tendril/sched/scheduler.hpp"
#include "tendril/sched/select.hpp"

namespace tendril {

class Semaphore {
public:
    explicit Semaphore(std::size_t permits = 0) : count_(permits) {}
    Semaphore(const Semaphore&) = delete;
    Semaphore& operator=(const Semaphore&) = delete;

    // ok (a permit is held), timeout or cancelled.
    [[nodiscard]] Status acquire(Deadline deadline = {}) {
        if (count_ > 0 && waiters_.empty()) {
            --count_;
            return Status::ok;
        }
        return wait_in(waiters_, "semaphore", this, deadline);
    }
    bool try_acquire() {
        if (count_ == 0 || !waiters_.empty()) return false;
        --count_;
        return true;
    }
    void release(std::size_t n = 1) {
        for (; n > 0; --n) {
            WaitNode* w = waiters_.pop_front();
            if (!w) break;
            wake_node(w, Status::ok);
        }
        count_ += n;
    }
    std::size_t available() const { return count_; }

private:
    std::size_t count_;
    WaitQueue waiters_;
};

}  // namespace tendril
