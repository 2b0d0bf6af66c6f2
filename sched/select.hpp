// select: wait for the first of several operations, as Go's select does.
//
//   int v;
//   auto r = select(Deadline::after(1s), ch.on_recv(v), sock.on_hangup());
//   if (r.index == 0) ...            // received v (r.status ok) or closed
//   else if (r.index == 1) ...       // the peer hung up
//   else ...                         // r.status: timeout or cancelled
//
// Cases already possible are taken at once, the first found from a random
// starting point, so no ready case starves. Otherwise one WaitNode per case
// is registered (in one heap block, so that wakers never touch the waiting
// fiber's stack to find it) and the first operation to happen completes the
// select and unregisters the others.
#pragma once

#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/sched/wait_queue.hpp"

namespace tendril {

struct Fiber;
struct PollDesc;

class SelectCase {
public:
    // Complete now if possible; st receives ok or closed.
    virtual bool try_now(Status& st) = 0;
    virtual void enqueue(WaitNode* node) = 0;
    virtual void dequeue(WaitNode* node) = 0;
    // Runs in the selecting fiber when a waker completed this case.
    virtual void finish() {}

protected:
    ~SelectCase() = default;
};

struct Selected {
    int index = -1;  // the case taken, or -1
    Status status = Status::ok;
};

struct SelectState {
    Fiber* fiber = nullptr;
    SelectCase** cases = nullptr;
    int n = 0;
    int chosen = -1;
    Status status = Status::ok;
    WaitNode nodes[1];  // n of them

    // A waker matched `w` (and took it out of its queue): finish the select.
    void complete(WaitNode* w, Status st);
};

// Wake whoever waits on `w`, a plain wait or one case of a select.
void wake_node(WaitNode* w, Status st);

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
// on_hangup() and on_writable()).
class FdCase final : public SelectCase {
public:
    enum Kind { readable, writable, hangup };
    FdCase(PollDesc* pd, Kind kind) : pd_(pd), kind_(kind) {}
    bool try_now(Status& st) override;
    void enqueue(WaitNode* node) override;
    void dequeue(WaitNode* node) override;

private:
    PollDesc* pd_;
    Kind kind_;
};

}  // namespace tendril
