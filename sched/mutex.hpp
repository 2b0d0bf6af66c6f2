// Mutex: mutual exclusion between fibers of one scheduler.
//
// Needed only around critical sections that may block (fibers are never
// preempted). Ownership is handed to the longest waiter on unlock, so a
// fiber that unlocks and relocks at once cannot starve the others. lock() is
// a BasicLockable for std::lock_guard / std::unique_lock and is not
// cancellable; lock(deadline) is.
#pragma once

#include "tendril/core/fatal.hpp"
#include "tendril/sched/scheduler.hpp"
#include "tendril/sched/select.hpp"

namespace tendril {

class Mutex {
public:
    Mutex() = default;
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;

    void lock() {
        CancelShield shield;
        Status st = lock(Deadline::never());
        if (st != Status::ok) fatal("Mutex::lock(): %s", to_string(st));
    }
    // ok (the lock is held), timeout or cancelled.
    [[nodiscard]] Status lock(Deadline deadline) {
        if (!locked_) {
            locked_ = true;
            return Status::ok;
        }
        return wait_in(waiters_, "mutex", this, deadline);  // ok: handed over by unlock()
    }
    bool try_lock() {
        if (locked_) return false;
        locked_ = true;
        return true;
    }
    void unlock() {
        if (!locked_) fatal("Mutex::unlock() of an unlocked mutex");
        if (WaitNode* w = waiters_.pop_front()) wake_node(w, Status::ok);  // stays locked: handed over
        else locked_ = false;
    }
    bool locked() const { return locked_; }

private:
    bool locked_ = false;
    WaitQueue waiters_;
};

}  // namespace tendril
