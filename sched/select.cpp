// select over channel operations and descriptor readiness (see select.hpp).
#include "tendril/sched/select.hpp"

#include "tendril/core/fatal.hpp"
#include "tendril/sched/scheduler.hpp"

#include <cstdlib>
#include <new>

namespace tendril {

void wake_node(WaitNode* w, Status st) {
    if (w->select) w->select->complete(w, st);
    else w->fiber->sched->ready(w->fiber, st);
}

void SelectState::complete(WaitNode* w, Status st) {
    Scheduler* s = fiber->sched;
    s->make_resident(fiber);  // the cases live on the selecting fiber's stack
    chosen = w->case_index;
    status = st;
    for (int i = 0; i < n; ++i)
        if (&nodes[i] != w) cases[i]->dequeue(&nodes[i]);
    s->ready(fiber, Status::ok);
}

namespace {
void unlink_select(Fiber* f) {
    auto* st = static_cast<SelectState*>(const_cast<void*>(f->wait_object));
    f->sched->make_resident(f);
    for (int i = 0; i < st->n; ++i) st->cases[i]->dequeue(&st->nodes[i]);
}
}  // namespace

Selected select_cases(SelectCase** cases, int n, Deadline deadline, bool block) {
    Scheduler* s = Scheduler::current();
    Fiber* f = Scheduler::current_fiber();
    if (!s || !f) fatal("select() called outside a fiber");
    if (n > 0) {
        int start = static_cast<int>(s->random() % static_cast<std::uint32_t>(n));
        for (int k = 0; k < n; ++k) {
            int i = (start + k) % n;
            Status st = Status::ok;
            if (cases[i]->try_now(st)) return Selected{i, st};
        }
    }
    if (!block) return Selected{-1, Status::empty};
    if (this_fiber::cancelled()) return Selected{-1, Status::cancelled};
    if (deadline.expired()) return Selected{-1, Status::timeout};

    std::size_t bytes = sizeof(SelectState) + sizeof(WaitNode) * static_cast<std::size_t>(n > 1 ? n - 1 : 0);
    void* mem = std::malloc(bytes);
    if (!mem) throw std::bad_alloc();
    auto* state = ::new (mem) SelectState;
    for (int i = 1; i < n; ++i) ::new (&state->nodes[i]) WaitNode;
    state->fiber = f;
    state->cases = cases;
    state->n = n;
    for (int i = 0; i < n; ++i) {
        WaitNode& node = state->nodes[i];
        node.fiber = f;
        node.select = state;
        node.case_index = i;
        cases[i]->enqueue(&node);
    }
    Status st = s->park("select", state, unlink_select, deadline);
    Selected r = st == Status::ok ? Selected{state->chosen, state->status} : Selected{-1, st};
    std::free(mem);
    if (r.index >= 0) cases[r.index]->finish();
    return r;
}

// --- FdCase -------------------------------------------------------------------

bool FdCase::try_now(Status& st) {
    if (!pd_->open) {
        st = Status::closed;
        return true;
    }
    st = Status::ok;
    switch (kind_) {
    case readable: return pd_->readable;
    case writable: return pd_->writable;
    case hangup: return pd_->hup || pd_->err;
    }
    return false;
}

void FdCase::enqueue(WaitNode* node) {
    WaitNode*& slot = kind_ == writable ? pd_->writer : pd_->reader;
    if (slot) fatal("select: fd %d already has a fiber waiting in that direction", pd_->fd);
    node->slot = pd_;
    node->flags = kind_ == hangup ? kWaitHangupOnly : 0;
    slot = node;
    node->fiber->sched->io_attached();
}

void FdCase::dequeue(WaitNode* node) {
    WaitNode*& slot = kind_ == writable ? pd_->writer : pd_->reader;
    if (slot != node) return;
    slot = nullptr;
    node->fiber->sched->io_detached();
}

}  // namespace tendril
