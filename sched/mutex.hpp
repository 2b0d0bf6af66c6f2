// Mutex: mutual exclusion between fibers, of one scheduler or several.
//
// Needed only around critical sections that may block (fibers are never
// preempted), or around state shared with fibers of other threads.
// Ownership is handed to the longest waiter on unlock, so a fiber that
// unlocks and relocks at once cannot starve the others. lock() is a
// BasicLockable for std::lock_guard / std::unique_lock and is not
// cancellable; lock(deadline) is. Thread-safe; a waiter parks its fiber,
// never its thread.
#pragma once

#include "tendril/core/fatal.hpp"
#include "tendril/core/spin_lock.hpp"
#include "tendril/sched/scheduler.hpp"
#include "tendril/sched/wait_queue.hpp"

#include <mutex>

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
        std::unique_lock<SpinLock> held(lock_);
        if (!locked_) {
            locked_ = true;
            return Status::ok;
        }
        return wait_in(waiters_, held, "mutex", this, deadline);  // ok: handed over by unlock()
    }
    bool try_lock() {
        std::lock_guard<SpinLock> held(lock_);
        if (locked_) return false;
        locked_ = true;
        return true;
    }
    void unlock() {
        WaitNode* next;
        {
            std::lock_guard<SpinLock> held(lock_);
            if (!locked_) fatal("Mutex::unlock() of an unlocked mutex");
            next = waiters_.pop_claimed();
            if (!next) locked_ = false;  // else it stays locked: handed over
        }
        if (next) wake_claimed(next, Status::ok);
    }
    bool locked() const {
        std::lock_guard<SpinLock> held(lock_);
        return locked_;
    }

private:
    mutable SpinLock lock_;
    bool locked_ = false;
    WaitQueue waiters_{&lock_};
};

}  // namespace tendril
