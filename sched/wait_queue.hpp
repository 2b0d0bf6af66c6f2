// WaitNode and WaitQueue: how a parked fiber is found again, and the small
// protocol every waiting primitive (channels, Mutex, Event, ...) follows.
//
// A fiber that waits registers a WaitNode with the thing it waits on (a
// channel's receiver queue, a descriptor's reader slot, a mutex) and parks.
// Nodes live in the fiber's heap record, never on its stack: the scheduler may
// compact a parked fiber's stack away, and the waker must be able to read the
// node without faulting it back in. A select registers one node per case;
// those share a SelectState and live in one heap block.
//
// The protocol, for primitives shared between threads:
//   * A primitive guards its state and queues with one SpinLock. A waiter
//     links its node under the lock and parks with wait_in(), which drops the
//     lock on the way.
//   * A waker pops a node under the lock and *claims* it: a plain waiter is
//     claimed by being popped; a select case only if no other case of the
//     same select (nor its timeout) got there first -- pop_claimed() skips
//     the others. Whoever claims a wait owes it exactly one wake, and a
//     timeout or a cancellation that finds its node already claimed waits
//     for that wake instead of returning.
//   * wake_claimed() readies the fiber on its own scheduler: directly on the
//     same thread, else posted to that scheduler's inbox (a batch, one
//     wake-up of its poller). Wakes happen after the primitive's lock is
//     released (PendingWakes), since a woken waiter may destroy it. A value
//     for the waiter goes with PendingWakes::add_with(): it is written into
//     the waiter's slot on the waiter's own thread, after its stack is made
//     resident, so no thread ever writes into another thread's fiber stack.
#pragma once

#include "tendril/core/intrusive_list.hpp"
#include "tendril/core/spin_lock.hpp"
#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"

#include <cstdint>
#include <mutex>
#include <utility>

namespace tendril {

struct Fiber;
struct SelectState;
class WaitQueue;

struct WaitNode {
    ListHook<WaitNode> hook;
    WaitQueue* queue = nullptr;  // the queue this node is linked in, if any
    SpinLock* guard = nullptr;   // that queue's lock, for unlinking on a timeout
    Fiber* fiber = nullptr;
    void* slot = nullptr;          // operation-specific (the value to send or receive into)
    SelectState* select = nullptr;  // set when this node is one case of a select
    std::int32_t case_index = -1;
    std::uint32_t flags = 0;  // operation-specific; the wake's status while in a PendingWakes
};

// Intrusive FIFO of WaitNodes: waiters are woken in arrival order. Guarded
// by the primitive's lock (given here so that a timed-out waiter can unlink
// itself); nullptr for a queue used by one thread only.
class WaitQueue {
public:
    explicit WaitQueue(SpinLock* lock = nullptr) : lock_(lock) {}
    WaitQueue(const WaitQueue&) = delete;
    WaitQueue& operator=(const WaitQueue&) = delete;

    bool empty() const { return list_.empty(); }
    WaitNode* front() const { return list_.front(); }
    std::uint32_t size() const { return static_cast<std::uint32_t>(list_.size()); }
    SpinLock* lock() const { return lock_; }

    void push_back(WaitNode* n) {
        n->queue = this;
        n->guard = lock_;
        list_.push_back(n);
    }
    WaitNode* pop_front() {
        WaitNode* n = list_.pop_front();
        if (n) n->queue = nullptr;
        return n;
    }
    void remove(WaitNode* n) {
        list_.remove(n);
        n->queue = nullptr;
    }
    // The first waiter that can still be woken, claimed with `status` (see
    // above); the unclaimable ones are dropped on the way.
    WaitNode* pop_claimed(Status status = Status::ok);

private:
    IntrusiveList<WaitNode, &WaitNode::hook> list_;
    SpinLock* lock_;
};

// Park the current fiber in `queue` (FIFO) until a waker claims and wakes
// its node, the deadline passes or it is cancelled; `held` (the queue's
// lock, locked) is released before parking. `slot` is for the waker (where a
// value goes); `then(then_arg)`, if given, runs after `held` is released and
// before parking (CondVar releases its Mutex there). Returns the waker's
// status, timeout or cancelled.
[[nodiscard]] Status wait_in(WaitQueue& queue, std::unique_lock<SpinLock>& held, const char* reason,
                             const void* object, Deadline deadline = {}, void* slot = nullptr,
                             void (*then)(void*) = nullptr, void* then_arg = nullptr);
// For a queue without a lock (one thread only).
[[nodiscard]] Status wait_in(WaitQueue& queue, const char* reason, const void* object,
                             Deadline deadline = {}, void* slot = nullptr);

// Claim w (caller holds its queue's lock and has unlinked it). False: a
// select case whose select something else already completed -- drop it.
bool claim(WaitNode* w, Status status);
// Wake a claimed waiter with the status claim() recorded for it.
void wake_claimed(WaitNode* w, Status status);
// Claim and wake; false if w could not be claimed.
inline bool wake_node(WaitNode* w, Status status) {
    if (!claim(w, status)) return false;
    wake_claimed(w, status);
    return true;
}

// Work for a waiter's own thread, done before it resumes.
class Delivery {
public:
    virtual ~Delivery() = default;
    virtual void deliver(void* slot) = 0;
};
bool waiter_is_local(const WaitNode* w);
// Make the waiter's stack resident (its slot may lie on it). Its thread only.
void make_waiter_resident(WaitNode* w);
// Post d (owned) with the wake to the waiter's scheduler.
void wake_claimed_remote(WaitNode* w, Status status, Delivery* d);

// Claimed waiters whose wakes wait until the primitive's lock is released.
// A waiter on another thread may resume the moment it is woken, and its
// wait being over, it may destroy the channel or event it waited on; so the
// waker must be done with the primitive first. Declare a PendingWakes
// before the lock guard: the guard is destroyed (unlocks) first, then this
// wakes. At most one waiter gets a value with its wake (a send hands one).
class PendingWakes {
public:
    PendingWakes() = default;
    PendingWakes(const PendingWakes&) = delete;
    PendingWakes& operator=(const PendingWakes&) = delete;
    ~PendingWakes() { wake_now(); }

    // w is claimed; it will be woken with `status`.
    void add(WaitNode* w, Status status) {
        w->flags = static_cast<std::uint32_t>(status);
        list_.push_back(w);
    }
    // w is claimed; deliver(slot) runs on its thread before it resumes.
    template <class F>
    void add_with(WaitNode* w, Status status, F&& deliver) {
        if (waiter_is_local(w)) {  // its thread is this one: it cannot run meanwhile
            make_waiter_resident(w);
            deliver(w->slot);
            add(w, status);
            return;
        }
        struct Of final : Delivery {
            explicit Of(F&& f) : f(std::forward<F>(f)) {}
            void deliver(void* slot) override { f(slot); }
            std::decay_t<F> f;
        };
        handoff_ = w;
        handoff_status_ = status;
        delivery_ = new Of(std::forward<F>(deliver));
    }
    // Wake now (the lock is already released).
    void wake_now();

private:
    IntrusiveList<WaitNode, &WaitNode::hook> list_;
    WaitNode* handoff_ = nullptr;
    Status handoff_status_ = Status::ok;
    Delivery* delivery_ = nullptr;
};

}  // namespace tendril
