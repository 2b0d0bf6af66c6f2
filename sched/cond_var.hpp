// CondVar: wait for a condition under a Mutex (std::condition_variable's
// contract for fibers). The mutex is held again when wait() returns,
// whatever the result. Thread-safe, like Mutex.
#pragma once

#include "tendril/core/spin_lock.hpp"
#include "tendril/sched/mutex.hpp"
#include "tendril/sched/wait_queue.hpp"

#include <mutex>

namespace tendril {

class CondVar {
public:
    CondVar() = default;
    CondVar(const CondVar&) = delete;
    CondVar& operator=(const CondVar&) = delete;

    // ok (notified), timeout or cancelled.
    [[nodiscard]] Status wait(Mutex& m, Deadline deadline = {}) {
        std::unique_lock<SpinLock> held(lock_);
        // The mutex is released only once this waiter is queued, so a
        // notify that follows the unlock cannot be missed.
        Status st = wait_in(waiters_, held, "condition", this, deadline, nullptr,
                            [](void* mutex) { static_cast<Mutex*>(mutex)->unlock(); }, &m);
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
        PendingWakes wakes;
        std::lock_guard<SpinLock> held(lock_);
        if (WaitNode* w = waiters_.pop_claimed()) wakes.add(w, Status::ok);
    }
    void notify_all() {
        PendingWakes wakes;
        std::lock_guard<SpinLock> held(lock_);
        while (WaitNode* w = waiters_.pop_claimed()) wakes.add(w, Status::ok);
    }

private:
    SpinLock lock_;
    WaitQueue waiters_{&lock_};
};

}  // namespace tendril
