// CondVar: wait for a condition under a Mutex (std::condition_variable's
// contract for fibers). The mutex is held again when wait() returns,
// whatever the result.
#pragma once

#include "tendril/sched/mutex.hpp"

#include <mutex>

namespace tendril {

class CondVar {
public:
    CondVar() = default;
    CondVar(const CondVar&) = delete;
    CondVar& operator=(const CondVar&) = delete;

    // ok (notified), timeout or cancelled.
    [[nodiscard]] Status wait(Mutex& m, Deadline deadline = {}) {
        Fiber* f = Scheduler::current_fiber();
        if (!f) fatal("CondVar::wait() called outside a fiber");
        f->node.fiber = f;
        f->node.select = nullptr;
        waiters_.push_back(&f->node);
        m.unlock();
        Status st = f->sched->park("condition", this, unlink_wait_node, deadline);
        m.lock();
        return st;
    }
    [[nodiscard]] Status wait(std::unique_lock<Mutex>& lock, Deadline deadline = {}) {
        return wait(*lock.mutex(), deadline);
    }
    template <class Pred>
    [[nodiscard]] Status wait(Mutex& m, Pred pred, Deadline deadline = {}) {
        while (!pred()) {
            Status st = wait(m, deadline);
            if (st != Status::ok) return pred() ? Status::ok : st;
        }
        return Status::ok;
    }

    void notify_one() {
        if (WaitNode* w = waiters_.pop_front()) wake_node(w, Status::ok);
    }
    void notify_all() {
        while (WaitNode* w = waiters_.pop_front()) wake_node(w, Status::ok);
    }

private:
    WaitQueue waiters_;
};

}  // namespace tendril
