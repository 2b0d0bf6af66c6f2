// Timer: run a function in a new fiber at a deadline, unless cancelled first
// (Go's time.AfterFunc). The node lives in the Timer, so cancelling (or
// destroying) it leaves nothing behind.
#pragma once

#include "tendril/sched/scheduler.hpp"

#include <functional>

namespace tendril {

class Timer {
public:
    Timer() = default;
    ~Timer() { cancel(); }
    Timer(const Timer&) = delete;
    Timer& operator=(const Timer&) = delete;

    // Replaces any pending start. Must be called on the scheduler's thread.
    void start(Deadline at, std::function<void()> fn) {
        cancel();
        sched_ = Scheduler::current();
        fn_ = std::move(fn);
        node_.owner = this;
        node_.fire = &Timer::fire;
        sched_->timers().insert(&node_, at.when());
    }
    void cancel() {
        if (sched_ && node_.queued()) sched_->timers().cancel(&node_);
        fn_ = nullptr;
    }
    bool pending() const { return node_.queued(); }

private:
    static void fire(TimerNode* n) {
        auto* t = static_cast<Timer*>(n->owner);
        t->sched_->go(std::move(t->fn_), FiberOptions{"timer"});
        t->fn_ = nullptr;
    }
    Scheduler* sched_ = nullptr;
    std::function<void()> fn_;
    TimerNode node_;
};

}  // namespace tendril
