// select: wait for the first of several operations, as Go's select does.
//
//   int v;
//   auto r = select(Deadline::after(1s), ch.on_recv(v), sock.on_hangup());
//   if (r.index == 0) ...            // received v (r.status ok) or closed
//   else if (r.index == 1) ...       // the peer hung up
//   else ...                         // r.status: timeout or cancelled
//
// As in Go, the locks of every case's object are taken together (in address
// order, so two selects never deadlock), cases already possible are taken at
// once -- the first found from a random starting point, so no ready case
// starves -- and otherwise one WaitNode per case is registered before the
// locks are dropped. The nodes live in one heap block, so wakers never touch
// the waiting fiber's stack to find them. The first operation to claim the
// select (SelectState::chosen) completes it; wakers meeting the other nodes
// skip them, and the select unregisters them when it resumes.
#pragma once

#include "tendril/core/spin_lock.hpp"
#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/sched/wait_queue.hpp"

#include <atomic>

namespace tendril {

struct Fiber;
struct PollDesc;

class SelectCase {
public:
    // The lock guarding the case's object (nullptr: a thread-local object).
    virtual SpinLock* lock() = 0;
    // With lock() held: complete now if possible; st receives ok or closed.
    // Waiters this completes go in `wakes` (woken once the locks are dropped).
    virtual bool try_now_locked(Status& st, PendingWakes& wakes) = 0;
    // With lock() held: register the node.
    virtual void enqueue_locked(WaitNode* node) = 0;
    // Unregister the node if it is still registered (takes lock() itself).
    virtual void dequeue(WaitNode* node) = 0;
    // Runs in the selecting fiber when a waker completed this case.
    virtual void finish() {}
    // Whether another thread may read or move from this case's frame while
    // the select waits (a send case's value): the stack is then pinned.
    virtual bool needs_pin() const { return false; }

protected:
    ~SelectCase() = default;
};

struct Selected {
    int index = -1;  // the case taken, or -1
    Status status = Status::ok;
};

struct SelectState {
    static constexpr int kInterrupted = -2;  // chosen by a timeout or a cancel
    Fiber* fiber = nullptr;
    SelectCase** cases = nullptr;
    int n = 0;
    std::atomic<int> chosen{-1};
    Status status = Status::ok;  // of the chosen case, written by its claimer
    WaitNode nodes[1];           // n of them
};

Selected select_cases(SelectCase** cases, int n, Deadline deadline, bool block);

template <class... Cases>
Selected select(Deadline deadline, Cases&&... cases) {
    SelectCase* arr[] = {&cases...};
    return select_cases(arr, static_cast<int>(sizeof...(Cases)), deadline, true);
}
template <class... Cases>
Selected select(Cases&&... cases) {
    return select(Deadline::never(), std::forward<Cases>(cases)...);
}
// Go's select with a default case: index -1 and Status::empty if none is ready.
template <class... Cases>
Selected try_select(Cases&&... cases) {
    SelectCase* arr[] = {&cases...};
    return select_cases(arr, static_cast<int>(sizeof...(Cases)), Deadline::never(), false);
}

// Descriptor readiness as a select case (used by net/ for on_readable(),
// on_hangup() and on_writable()). Descriptors belong to one scheduler.
class FdCase final : public SelectCase {
public:
    enum Kind { readable, writable, hangup };
    FdCase(PollDesc* pd, Kind kind) : pd_(pd), kind_(kind) {}
    SpinLock* lock() override { return nullptr; }
    bool try_now_locked(Status& st, PendingWakes& wakes) override;
    void enqueue_locked(WaitNode* node) override;
    void dequeue(WaitNode* node) override;

private:
    PollDesc* pd_;
    Kind kind_;
};

}  // namespace tendril
