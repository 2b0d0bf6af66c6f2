// The waiting protocol (see wait_queue.hpp): parking in a queue, claiming a
// waiter, and waking it on its own scheduler.
#include "tendril/sched/wait_queue.hpp"

#include "tendril/core/fatal.hpp"
#include "tendril/sched/detail/fiber.hpp"
#include "tendril/sched/detail/scheduler_core.hpp"
#include "tendril/sched/select.hpp"

namespace tendril {

using detail::SchedulerCore;

bool claim(WaitNode* w, Status status) {
    SelectState* s = w->select;
    if (!s) return true;  // a plain waiter: popping it was the claim
    int expected = -1;
    if (!s->chosen.compare_exchange_strong(expected, w->case_index, std::memory_order_acq_rel)) return false;
    s->status = status;
    return true;
}

WaitNode* WaitQueue::pop_claimed(Status status) {
    while (WaitNode* n = pop_front())
        if (claim(n, status)) return n;
    return nullptr;
}

void wake_claimed(WaitNode* w, Status status) {
    Fiber* f = w->fiber;
    // A select learns its case and status from its state; it resumes ok.
    Status st = w->select ? Status::ok : status;
    if (f->sched == SchedulerCore::current()) f->sched->ready(f, st);
    else f->sched->post_wake(f, f->wait_seq, st, nullptr, nullptr);
}

bool waiter_is_local(const WaitNode* w) { return w->fiber->sched == SchedulerCore::current(); }

void make_waiter_resident(WaitNode* w) { w->fiber->sched->make_resident(w->fiber); }

void wake_claimed_remote(WaitNode* w, Status status, Delivery* d) {
    Fiber* f = w->fiber;
    f->sched->post_wake(f, f->wait_seq, w->select ? Status::ok : status, d, w->slot);
}

void PendingWakes::wake_now() {
    while (WaitNode* w = list_.pop_front()) wake_claimed(w, static_cast<Status>(w->flags));
    if (WaitNode* w = std::exchange(handoff_, nullptr)) {
        if (Delivery* d = std::exchange(delivery_, nullptr)) wake_claimed_remote(w, handoff_status_, d);
        else wake_claimed(w, handoff_status_);
    }
}

bool unlink_wait_node(Fiber* f) {
    WaitNode& n = f->node;
    SpinLock* guard = n.guard;  // set by this fiber when it queued the node
    if (guard) guard->lock();
    bool linked = n.queue != nullptr;
    if (linked) n.queue->remove(&n);
    if (guard) guard->unlock();
    return linked;
}

namespace {
WaitNode* prepare_node(const char* reason, void* slot) {
    Fiber* f = SchedulerCore::current_fiber();
    if (!f) fatal("%s: waiting outside a fiber", reason);
    WaitNode& n = f->node;
    n.fiber = f;
    n.select = nullptr;
    n.slot = slot;
    n.flags = 0;
    return &n;
}
}  // namespace

Status wait_in(WaitQueue& queue, std::unique_lock<SpinLock>& held, const char* reason, const void* object,
               Deadline deadline, void* slot, void (*then)(void*), void* then_arg) {
    WaitNode* n = prepare_node(reason, slot);
    queue.push_back(n);
    held.unlock();
    if (then) then(then_arg);
    // A waker on another thread may claim the node before the park below;
    // its wake is taken by this scheduler's loop, which runs only after the
    // fiber has parked.
    return n->fiber->sched->park(reason, object, unlink_wait_node, deadline);
}

Status wait_in(WaitQueue& queue, const char* reason, const void* object, Deadline deadline, void* slot) {
    WaitNode* n = prepare_node(reason, slot);
    queue.push_back(n);
    return n->fiber->sched->park(reason, object, unlink_wait_node, deadline);
}

}  // namespace tendril
