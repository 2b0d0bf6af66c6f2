// Event: a flag fibers can wait for (gevent.event.Event, Python's
// threading.Event). set() wakes every waiter and stays set until clear().
// Thread-safe: a plain thread may set() it too.
#pragma once

#include "tendril/core/spin_lock.hpp"
#include "tendril/sched/scheduler.hpp"
#include "tendril/sched/wait_queue.hpp"

#include <mutex>

namespace tendril {

class Event {
public:
    Event() = default;
    ~Event() { set(); }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    void set() {
        PendingWakes wakes;
        std::lock_guard<SpinLock> held(lock_);
        set_ = true;
        while (WaitNode* w = waiters_.pop_claimed()) wakes.add(w, Status::ok);
    }
    void clear() {
        std::lock_guard<SpinLock> held(lock_);
        set_ = false;
    }
    bool is_set() const {
        std::lock_guard<SpinLock> held(lock_);
        return set_;
    }
    // ok, timeout or cancelled.
    [[nodiscard]] Status wait(Deadline deadline = {}) {
        std::unique_lock<SpinLock> held(lock_);
        if (set_) return Status::ok;
        return wait_in(waiters_, held, "event", this, deadline);
    }

private:
    mutable SpinLock lock_;
    bool set_ = false;
    WaitQueue waiters_{&lock_};
};

}  // namespace tendril
