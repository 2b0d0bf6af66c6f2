// WaitGroup: wait for a set of fibers to finish (Go's sync.WaitGroup).
#pragma once

#include "tendril/core/fatal.hpp"
#include "tendril/sched/scheduler.hpp"
#include "tendril/sched/select.hpp"

namespace tendril {

class WaitGroup {
public:
    WaitGroup() = default;
    WaitGroup(const WaitGroup&) = delete;
    WaitGroup& operator=(const WaitGroup&) = delete;

    void add(long n = 1) {
        count_ += n;
        if (count_ < 0) fatal("WaitGroup: negative counter");
        if (count_ == 0)
            while (WaitNode* w = waiters_.pop_front()) wake_node(w, Status::ok);
    }
    void done() { add(-1); }
    long count() const { return count_; }
    // ok once the counter is zero; timeout or cancelled.
    [[nodiscard]] Status wait(Deadline deadline = {}) {
        if (count_ == 0) return Status::ok;
        return wait_in(waiters_, "wait group", this, deadline);
    }

private:
    long count_ = 0;
    WaitQueue waiters_;
};

}  // namespace tendril
