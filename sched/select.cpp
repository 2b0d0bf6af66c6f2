// select over channel operations and descriptor readiness (see select.hpp).
#include "tendril/sched/select.hpp"

#include "tendril/core/fatal.hpp"
#include "tendril/sched/detail/fiber.hpp"
#include "tendril/sched/detail/poll_desc.hpp"
#include "tendril/sched/detail/scheduler_core.hpp"
#include "tendril/sched/scheduler.hpp"

#include <algorithm>
#include <cstdlib>
#include <new>

namespace tendril {

using detail::SchedulerCore;

namespace {

// A timeout or cancellation ends the select only if no case claimed it first.
bool unlink_select(Fiber* f) {
    auto* st = static_cast<SelectState*>(const_cast<void*>(f->wait_object));
    int expected = -1;
    return st->chosen.compare_exchange_strong(expected, SelectState::kInterrupted, std::memory_order_acq_rel);
}

// Every case's lock, each once, in address order (Go's sellock). Small
// inline: this frame stays on the stack while the select is parked, and a
// compacted stack keeps every byte of it.
class SelectLocks {
public:
    SelectLocks(SelectCase** cases, int n) {
        if (n > kInline) {
            heap_ = static_cast<SpinLock**>(std::malloc(sizeof(SpinLock*) * static_cast<std::size_t>(n)));
            if (!heap_) throw std::bad_alloc();
        }
        SpinLock** locks = heap_ ? heap_ : inline_;
        for (int i = 0; i < n; ++i)
            if (SpinLock* l = cases[i]->lock()) locks[count_++] = l;
        std::sort(locks, locks + count_);
        count_ = static_cast<int>(std::unique(locks, locks + count_) - locks);
        for (int i = 0; i < count_; ++i) locks[i]->lock();
    }
    void unlock() {
        SpinLock** locks = heap_ ? heap_ : inline_;
        for (int i = count_ - 1; i >= 0; --i) locks[i]->unlock();
        count_ = 0;
    }
    ~SelectLocks() {
        unlock();
        std::free(heap_);
    }

private:
    static constexpr int kInline = 4;
    SpinLock* inline_[kInline];
    SpinLock** heap_ = nullptr;
    int count_ = 0;
};

}  // namespace

Selected select_cases(SelectCase** cases, int n, Deadline deadline, bool block) {
    SchedulerCore* s = SchedulerCore::current();
    Fiber* f = SchedulerCore::current_fiber();
    if (!s || !f) fatal("select() called outside a fiber");
    if (n > 64) fatal("select() with %d cases (64 at most)", n);
    PendingWakes wakes;  // destroyed after `locks`: wakes once they are released
    SelectLocks locks(cases, n);
    if (n > 0) {
        int start = static_cast<int>(s->random() % static_cast<std::uint32_t>(n));
        for (int k = 0; k < n; ++k) {
            int i = (start + k) % n;
            Status st = Status::ok;
            if (cases[i]->try_now_locked(st, wakes)) return Selected{i, st};
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
    bool pin = false;
    for (int i = 0; i < n; ++i) {
        WaitNode& node = state->nodes[i];
        node.fiber = f;
        node.select = state;
        node.case_index = i;
        cases[i]->enqueue_locked(&node);
        pin |= cases[i]->needs_pin();
    }
    locks.unlock();
    Status st;
    if (pin) {
        StackPin keep;
        st = s->park("select", state, unlink_select, deadline);
    } else {
        st = s->park("select", state, unlink_select, deadline);
    }
    // Woken by the case that claimed the select, or by its timeout: the
    // other cases' nodes may still be registered.
    for (int i = 0; i < n; ++i) cases[i]->dequeue(&state->nodes[i]);
    int chosen = state->chosen.load(std::memory_order_acquire);
    Selected r = chosen >= 0 ? Selected{chosen, state->status} : Selected{-1, st};
    state->~SelectState();
    std::free(mem);
    if (r.index >= 0) cases[r.index]->finish();
    return r;
}

// --- FdCase -------------------------------------------------------------------

bool FdCase::try_now_locked(Status& st, PendingWakes&) {
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

void FdCase::enqueue_locked(WaitNode* node) {
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
