// Event: a flag fibers can wait for (gevent.event.Event, Python's
// threading.Event). set() wakes every waiter and stays set until clear().
#pragma once

#include "tendril/sched/scheduler.hpp"
#include "tendril/sched/select.hpp"

namespace tendril {

class Event {
public:
    Event() = default;
    ~Event() { set(); }
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;

    void set() {
        set_ = true;
        while (WaitNode* w = waiters_.pop_front()) wake_node(w, Status::ok);
    }
    void clear() { set_ = false; }
    bool is_set() const { return set_; }
    // ok, timeout or cancelled.
    [[nodiscard]] Status wait(Deadline deadline = {}) {
        if (set_) return Status::ok;
        return wait_in(waiters_, "event", this, deadline);
    }

private:
    bool set_ = false;
    WaitQueue waiters_;
};

}  // namespace tendril
