// FiberHandle, the free functions of the current fiber (yield, sleep,
// this_fiber) and its guards (CancelShield, StackPin).
#include "tendril/sched/fiber.hpp"

#include "tendril/core/fatal.hpp"
#include "tendril/sched/detail/fiber.hpp"
#include "tendril/sched/detail/scheduler_core.hpp"
#include "tendril/sched/scheduler.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace tendril {

using detail::SchedulerCore;

namespace {

void add_ref(Fiber* f) { f->refs.fetch_add(1, std::memory_order_relaxed); }

// The last reference frees the record; the fiber itself is done by then
// (a running fiber holds one), so any thread may do it.
void drop_ref(Fiber* f) {
    if (f->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete f;
}

SchedulerCore& need_scheduler(const char* what) {
    SchedulerCore* s = SchedulerCore::current();
    if (!s || !SchedulerCore::current_fiber()) fatal("%s called outside a fiber", what);
    return *s;
}

}  // namespace

// --- FiberHandle ---------------------------------------------------------------

FiberHandle::FiberHandle(Fiber* f) : f_(f) {
    if (f_) add_ref(f_);
}
FiberHandle::FiberHandle(const FiberHandle& o) : f_(o.f_) {
    if (f_) add_ref(f_);
}
FiberHandle::~FiberHandle() {
    if (f_) drop_ref(f_);
}
bool FiberHandle::done() const { return !f_ || f_->state.load(std::memory_order_acquire) == FiberState::done; }
std::uint64_t FiberHandle::id() const { return f_ ? f_->id : 0; }
const char* FiberHandle::name() const { return f_ ? f_->name : ""; }

Status FiberHandle::join(Deadline deadline) {
    if (done()) return Status::ok;
    Fiber* self = SchedulerCore::current_fiber();
    if (!self) fatal("FiberHandle::join() called outside a fiber");
    if (self == f_) fatal("fiber '%s' joins itself", self->name);
    // The fiber's scheduler wakes its joiners under this lock once it is
    // done, so "not done yet" and queueing here are one step.
    std::unique_lock<SpinLock> held(f_->joiners_lock);
    if (f_->get_state() == FiberState::done) return Status::ok;
    return wait_in(f_->joiners, held, "join", f_, deadline);
}

void FiberHandle::cancel() {
    if (!f_) return;
    SchedulerCore* home = f_->sched;
    if (home == SchedulerCore::current()) {
        home->cancel(f_);
        return;
    }
    // The fiber's state belongs to its thread: the cancel goes there, with
    // a reference that keeps the record alive until it is done.
    Fiber* f = f_;
    add_ref(f);
    home->post_call([home, f] {
        home->cancel(f);
        drop_ref(f);
    });
}

// --- the free functions --------------------------------------------------------

void yield() { need_scheduler("yield()").yield_current(); }

Status sleep_until(Deadline deadline) {
    SchedulerCore& s = need_scheduler("sleep");
    Status st = s.park("sleep", nullptr, nullptr, deadline);
    if (deadline.is_never()) return st;
    return st == Status::timeout ? Status::ok : st;
}

Status sleep_for(Duration d) {
    if (d <= Duration::zero()) {  // as gevent.sleep(0): let the others run
        yield();
        return this_fiber::cancelled() ? Status::cancelled : Status::ok;
    }
    return sleep_until(Deadline::after(d));
}

namespace this_fiber {
std::uint64_t id() {
    Fiber* f = SchedulerCore::current_fiber();
    return f ? f->id : 0;
}
const char* name() {
    Fiber* f = SchedulerCore::current_fiber();
    return f ? f->name : "";
}
void set_name(std::string_view name) {
    Fiber* f = SchedulerCore::current_fiber();
    if (!f) return;
    std::size_t n = std::min(name.size(), Fiber::kNameMax - 1);
    std::memcpy(f->name, name.data(), n);
    f->name[n] = 0;
}
bool cancelled() {
    Fiber* f = SchedulerCore::current_fiber();
    return f && f->cancel_requested && f->shield_depth == 0;
}
}  // namespace this_fiber

CancelShield::CancelShield() : f_(SchedulerCore::current_fiber()) {
    if (f_) ++f_->shield_depth;
}
CancelShield::~CancelShield() {
    if (f_) --f_->shield_depth;
}

StackPin::StackPin() : f_(SchedulerCore::current_fiber()) {
    if (f_) ++f_->pin_depth;
}
StackPin::~StackPin() {
    if (f_) --f_->pin_depth;
}

}  // namespace tendril
