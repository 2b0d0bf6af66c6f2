// The scheduler (see scheduler.hpp for the loop and its rules).
#include "tendril/sched/scheduler.hpp"

#include "tendril/core/context.hpp"
#include "tendril/core/fatal.hpp"
#include "tendril/sched/log_writer.hpp"
#include "tendril/sched/poll_table.hpp"
#include "tendril/sched/select.hpp"
#include "tendril/sched/signals.hpp"

#include <cxxabi.h>
#include <signal.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

namespace tendril {

namespace {

thread_local Scheduler* t_scheduler = nullptr;
thread_local Fiber* t_fiber = nullptr;

// The C++ runtime keeps "the exceptions being handled" per thread. A fiber
// that parks inside a catch block would otherwise share that list with every
// other fiber of the thread (folly::fibers and Boost.Fiber swap it too).
struct EhGlobals {
    void* caught;
    unsigned int uncaught;
};
EhGlobals* eh_globals() { return reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals()); }

std::terminate_handler g_previous_terminate = nullptr;

// An exception escaping a fiber reaches a noexcept frame, so std::terminate
// runs before any unwinding: the core dump still shows where it was thrown.
[[noreturn]] void on_terminate() {
    if (Fiber* f = t_fiber) {
        const char* what = "an exception not derived from std::exception";
        std::string msg;
        if (auto ep = std::current_exception()) {
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                msg = e.what();
                what = msg.c_str();
            } catch (...) {
            }
            fatal("uncaught exception in fiber %" PRIu64 " '%s': %s", f->id, f->name, what);
        }
        fatal("std::terminate called in fiber %" PRIu64 " '%s'", f->id, f->name);
    }
    if (g_previous_terminate) g_previous_terminate();
    std::abort();
}

constexpr std::uint64_t kCanary = 0x7e6e6472696c5f31ull;  // "tendril_1"
constexpr int kPollBatch = 512;
// While fibers are runnable the loop still polls (with a zero timeout) at
// least this often, so I/O is not starved by busy fibers.
constexpr int kRoundsPerPoll = 61;

// Fiber deadlines are lazy, as nginx's timers: waking does not take the
// fiber's node out of the heap, and a later wait with a later deadline
// leaves the earlier entry in place. When an entry fires, the fiber's real
// deadline decides: past -- time out; in the future -- go back in the heap;
// none (not waiting with a deadline) -- drop it. A keep-alive connection
// that waits with the same idle timeout before every request thus costs no
// heap work per request.
void fiber_timeout(TimerNode* n) {
    Fiber* f = static_cast<Fiber*>(n->owner);
    if (f->state != FiberState::parked || f->deadline == Instant::max()) return;
    if (f->deadline > f->sched->now()) {
        f->sched->timers().insert(n, f->deadline);
        return;
    }
    f->sched->interrupt(f, Status::timeout);
}

}  // namespace

const char* to_string(FiberState s) noexcept {
    switch (s) {
    case FiberState::runnable: return "runnable";
    case FiberState::running: return "running";
    case FiberState::parked: return "parked";
    case FiberState::done: return "done";
    }
    return "?";
}

struct FiberEntry {
    static void entry(Transfer t) noexcept {
        Fiber* f = static_cast<Fiber*>(t.data);
        Scheduler* s = f->sched;
        s->main_ctx_ = t.fctx;
        StackBounds from;
        context_started(&from);
        if (from.lo) {
            s->main_stack_lo_ = from.lo;
            s->main_stack_size_ = from.size;
        }
        f->invoke(f->callable);  // noexcept: see on_terminate
        s->exit_current();
    }
};

namespace {
// TENDRIL_STACK_RECLAIM=none|trim|compact overrides the default policy
// (for measurements and for telling a bug in reclaiming from others).
SchedulerOptions with_env(SchedulerOptions o) {
    if (const char* v = std::getenv("TENDRIL_STACK_RECLAIM")) {
        if (!std::strcmp(v, "none")) o.reclaim = StackReclaim::none;
        else if (!std::strcmp(v, "trim")) o.reclaim = StackReclaim::trim;
        else if (!std::strcmp(v, "compact")) o.reclaim = StackReclaim::compact;
    }
    return o;
}
}  // namespace

Scheduler::Scheduler(SchedulerOptions options)
    : options_(with_env(options)),
      polls_(std::make_unique<PollTable>()),
      log_writer_(std::make_unique<LogWriter>(*this)),
      now_(Clock::now()) {
    StackPool::install_fault_handler();
    LogWriter::install();
    static std::once_flag once;
    std::call_once(once, [] {
        g_previous_terminate = std::set_terminate(on_terminate);
        // A peer that goes away must never kill a server. send() has
        // MSG_NOSIGNAL, but Linux's sendfile(2) has no such flag, so SIGPIPE
        // is ignored unless the program handles it itself (nginx and Go do
        // the same); writes then fail with EPIPE.
        struct sigaction old{};
        ::sigaction(SIGPIPE, nullptr, &old);
        if (old.sa_handler == SIG_DFL) ::signal(SIGPIPE, SIG_IGN);
    });
    prev_current_ = t_scheduler;
    t_scheduler = this;
    signals_register(this);
}

Scheduler::~Scheduler() {
    if (live_ > 0 && !running_) {
        for (Fiber* f = all_; f; f = f->all_next) cancel(f);
        run();
    }
    signals_unregister(this);
    t_scheduler = prev_current_;
}

Scheduler* Scheduler::current() noexcept { return t_scheduler; }
Fiber* Scheduler::current_fiber() noexcept { return t_fiber; }

std::uint32_t Scheduler::random() noexcept {
    std::uint32_t x = rng_;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_ = x;
}

// --- spawning ------------------------------------------------------------------

Fiber* Scheduler::create_fiber(const FiberOptions& options) {
    auto* f = new Fiber;
    f->sched = this;
    f->id = next_id_++;
    if (options.name.empty())
        std::snprintf(f->name, sizeof f->name, "fiber-%" PRIu64, f->id);
    else
        std::memcpy(f->name, options.name.data(), std::min(options.name.size(), Fiber::kNameMax - 1));
    StackOptions so = options_.stack;
    if (options.stack_size) so.size = options.stack_size;
    if (options.guard >= 0) so.guard = options.guard != 0;
    f->pool = &StackPool::for_thread(so);
    f->stack = f->pool->acquire(f->name);
    if (!f->pool->options().guard) std::memcpy(f->stack.lo, &kCanary, sizeof kCanary);
    f->timer.owner = f;
    f->timer.fire = fiber_timeout;
    f->node.fiber = f;
    f->callable = f->stack.hi;
    return f;
}

void* Scheduler::reserve_callable(Fiber* f, std::size_t size, std::size_t align) {
    if (align < 16) align = 16;
    auto top = reinterpret_cast<std::uintptr_t>(f->stack.hi) - size;
    top &= ~(align - 1);
    if (top < reinterpret_cast<std::uintptr_t>(f->stack.lo) + f->stack.size() / 2)
        fatal("fiber '%s': its function object (%zu bytes) does not fit its stack", f->name, size);
    return reinterpret_cast<void*>(top);
}

FiberHandle Scheduler::start_fiber(Fiber* f) {
    // The context starts below the function object stored at the stack top.
    auto* top = static_cast<char*>(f->callable);
    std::size_t usable = static_cast<std::size_t>(top - f->stack.lo);
    f->ctx = make_context(top, usable, &FiberEntry::entry);
    f->all_next = all_;
    if (all_) all_->all_prev = f;
    all_ = f;
    ++live_;
    FiberHandle h(f);
    push_ready(f);
    return h;
}

void Scheduler::push_ready(Fiber* f) {
    f->run_next = nullptr;
    if (run_tail_) run_tail_->run_next = f;
    else run_head_ = f;
    run_tail_ = f;
}

// --- switching -----------------------------------------------------------------

void Scheduler::switch_to(Fiber* f) {
    make_resident(f);
    running_ = f;
    t_fiber = f;
    f->state = FiberState::running;
    EhGlobals* g = eh_globals();
    main_eh_[0] = g->caught;
    main_eh_[1] = reinterpret_cast<void*>(static_cast<std::uintptr_t>(g->uncaught));
    g->caught = f->eh_globals[0];
    g->uncaught = static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(f->eh_globals[1]));

    Transfer t = switch_context(f->ctx, f, &main_fake_stack_, StackBounds{f->stack.lo, f->stack.size()});

    f->ctx = t.fctx;
    f->eh_globals[0] = g->caught;
    f->eh_globals[1] = reinterpret_cast<void*>(static_cast<std::uintptr_t>(g->uncaught));
    g->caught = main_eh_[0];
    g->uncaught = static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(main_eh_[1]));
    running_ = nullptr;
    t_fiber = nullptr;
    ++counters_.switches;
    if (!f->pool->options().guard && std::memcmp(f->stack.lo, &kCanary, sizeof kCanary) != 0)
        fatal("fiber stack overflow in fiber '%s' (unguarded %zu KiB stack: its canary was "
              "overwritten)", f->name, f->stack.size() / 1024);
    if (f->state == FiberState::done) finish(f);
}

void Scheduler::exit_current() {
    Fiber* f = running_;
    f->state = FiberState::done;
    // nullptr fake-stack slot: ASan frees this fiber's fake stack.
    switch_context(main_ctx_, nullptr, nullptr, StackBounds{main_stack_lo_, main_stack_size_});
    __builtin_unreachable();
}

void Scheduler::finish(Fiber* f) {
    timers_.cancel(&f->timer);  // lazily left in the heap; the record goes away
    f->pool->release(f->stack);
    f->stack = Stack{};
    while (WaitNode* w = f->joiners.pop_front()) wake_node(w, Status::ok);
    if (f->all_prev) f->all_prev->all_next = f->all_next;
    else all_ = f->all_next;
    if (f->all_next) f->all_next->all_prev = f->all_prev;
    --live_;
    release_ref(f);
}

void Scheduler::release_ref(Fiber* f) {
    if (--f->refs == 0) delete f;
}

// --- parking -------------------------------------------------------------------

Status Scheduler::park(const char* reason, const void* object, void (*unlink)(Fiber*),
                       Deadline deadline) {
    Fiber* f = running_;
    if (!f) fatal("park() called outside a fiber (%s)", reason);
    if (f->cancel_requested && f->shield_depth == 0) {
        if (unlink) unlink(f);
        return Status::cancelled;
    }
    if (!deadline.is_never()) {
        if (deadline.when() <= now_ && deadline.expired()) {
            if (unlink) unlink(f);
            return Status::timeout;
        }
        f->deadline = deadline.when();
        if (!f->timer.queued() || f->timer.when > f->deadline) timers_.insert(&f->timer, f->deadline);
    } else {
        f->deadline = Instant::max();
    }
    f->wait_reason = reason;
    f->wait_object = object;
    f->wait_unlink = unlink;
    f->state = FiberState::parked;
    f->parked_at = now_;
    if (options_.reclaim != StackReclaim::none && f->pin_depth == 0) {
        f->in_reclaim_list = true;
        f->reclaim_next = nullptr;
        f->reclaim_prev = reclaim_tail_;
        if (reclaim_tail_) reclaim_tail_->reclaim_next = f;
        else reclaim_head_ = f;
        reclaim_tail_ = f;
    }
    Transfer t = switch_context(main_ctx_, nullptr, &f->sanitizer_fake_stack,
                                StackBounds{main_stack_lo_, main_stack_size_});
    main_ctx_ = t.fctx;
    return f->wake_status;
}

void Scheduler::yield_current() {
    Fiber* f = running_;
    f->state = FiberState::runnable;
    push_ready(f);
    Transfer t = switch_context(main_ctx_, nullptr, &f->sanitizer_fake_stack,
                                StackBounds{main_stack_lo_, main_stack_size_});
    main_ctx_ = t.fctx;
}

void Scheduler::unlist_reclaim(Fiber* f) {
    if (f->reclaim_prev) f->reclaim_prev->reclaim_next = f->reclaim_next;
    else reclaim_head_ = f->reclaim_next;
    if (f->reclaim_next) f->reclaim_next->reclaim_prev = f->reclaim_prev;
    else reclaim_tail_ = f->reclaim_prev;
    f->reclaim_prev = f->reclaim_next = nullptr;
    f->in_reclaim_list = false;
}

void Scheduler::ready(Fiber* f, Status status) {
    if (f->state != FiberState::parked) return;
    f->deadline = Instant::max();  // the heap entry, if any, is dropped when it fires
    if (f->in_reclaim_list) unlist_reclaim(f);
    f->wake_status = status;
    f->wait_unlink = nullptr;
    f->wait_reason = nullptr;
    f->wait_object = nullptr;
    f->state = FiberState::runnable;
    push_ready(f);
}

void Scheduler::interrupt(Fiber* f, Status status) {
    if (f->state != FiberState::parked) return;
    if (f->wait_unlink) f->wait_unlink(f);
    ready(f, status);
}

void Scheduler::cancel(Fiber* f) {
    if (f->state == FiberState::done) return;
    f->cancel_requested = true;
    if (f->state == FiberState::parked && f->shield_depth == 0) interrupt(f, Status::cancelled);
}

void Scheduler::make_resident(Fiber* f) {
    if (!f->compacted) return;
    StackPool::make_resident(f->stack);
    f->compacted = false;
    ++counters_.restored;
}

// --- descriptors ---------------------------------------------------------------

PollDesc* Scheduler::poll_open(int fd) {
    PollDesc* pd = polls_->get(fd);
    ++pd->gen;
    pd->open = true;
    // Unknown readiness counts as ready: the first call tries the syscall
    // (a new connection's request is usually there already).
    pd->readable = pd->writable = true;
    pd->hup = pd->err = false;
    pd->reader = pd->writer = nullptr;
    pd->polled = poller_.add(*pd);
    if (!pd->polled) pd->readable = pd->writable = true;
    return pd;
}

void Scheduler::poll_release(PollDesc* pd) {
    if (pd->open && pd->polled) poller_.remove(*pd, false);
    poll_close(pd);
}

void Scheduler::poll_close(PollDesc* pd) {
    if (!pd->open) return;
    if (pd->polled) poller_.remove(*pd, true);
    pd->open = false;
    ++pd->gen;
    for (WaitNode** slot : {&pd->reader, &pd->writer}) {
        if (WaitNode* w = *slot) {
            *slot = nullptr;
            --io_waiters_;
            wake_node(w, Status::closed);
        }
    }
}

namespace {
void unlink_io(Fiber* f) {
    auto* pd = static_cast<PollDesc*>(f->node.slot);
    if (pd->reader == &f->node) pd->reader = nullptr;
    else if (pd->writer == &f->node) pd->writer = nullptr;
    else return;
    f->sched->io_detached();
}
}  // namespace

void Scheduler::io_attached() { ++io_waiters_; }
void Scheduler::io_detached() { --io_waiters_; }

Status Scheduler::wait_io(PollDesc* pd, WaitNode*& slot, std::uint32_t flags, const char* reason,
                          Deadline deadline) {
    Fiber* f = running_;
    if (slot) fatal("fiber '%s' waits on fd %d where fiber '%s' already waits for the same "
                    "direction", f ? f->name : "?", pd->fd, slot->fiber->name);
    WaitNode* w = &f->node;
    w->fiber = f;
    w->select = nullptr;
    w->slot = pd;
    w->flags = flags;
    slot = w;
    ++io_waiters_;
    return park(reason, pd, unlink_io, deadline);
}

Status Scheduler::wait_readable(PollDesc* pd, Deadline deadline) {
    if (!pd->open) return Status::closed;
    if (pd->readable) return Status::ok;
    return wait_io(pd, pd->reader, 0, "fd read", deadline);
}

Status Scheduler::wait_writable(PollDesc* pd, Deadline deadline) {
    if (!pd->open) return Status::closed;
    if (pd->writable) return Status::ok;
    return wait_io(pd, pd->writer, 0, "fd write", deadline);
}

Status Scheduler::wait_hangup(PollDesc* pd, Deadline deadline) {
    if (!pd->open) return Status::closed;
    if (pd->hup || pd->err) return Status::ok;
    return wait_io(pd, pd->reader, kWaitHangupOnly, "fd hang-up", deadline);
}

// --- the loop ------------------------------------------------------------------

void Scheduler::run_ready() {
    Fiber* f = run_head_;
    run_head_ = run_tail_ = nullptr;
    while (f) {
        Fiber* next = f->run_next;
        switch_to(f);
        f = next;
    }
}

void Scheduler::poll_io(Duration timeout) {
    PollEvent events[kPollBatch];
    int n = poller_.poll(timeout, events, kPollBatch);
    ++counters_.polls;
    for (int i = 0; i < n; ++i) {
        int fd = static_cast<int>(events[i].token & 0xffffffffu);
        auto gen = static_cast<std::uint32_t>(events[i].token >> 32);
        PollDesc* pd = polls_->find(fd);
        if (!pd || !pd->open || pd->gen != gen) continue;  // closed (and maybe reused) since
        std::uint32_t ev = events[i].events;
        if (ev & poll_event::hup) pd->hup = true;
        if (ev & poll_event::err) pd->err = true;
        if (ev & poll_event::in) {
            pd->readable = true;
            WaitNode* w = pd->reader;
            if (w && (!(w->flags & kWaitHangupOnly) || pd->hup || pd->err)) {
                pd->reader = nullptr;
                --io_waiters_;
                wake_node(w, Status::ok);
            }
        }
        if (ev & poll_event::out) {
            pd->writable = true;
            if (WaitNode* w = pd->writer) {
                pd->writer = nullptr;
                --io_waiters_;
                wake_node(w, Status::ok);
            }
        }
    }
}

void Scheduler::fire_timers() {
    while (TimerNode* n = timers_.pop_due(now_)) n->fire(n);
}

void Scheduler::run_posted() {
    post_pending_.store(false, std::memory_order_release);
    std::vector<std::function<void()>> work;
    {
        std::lock_guard<std::mutex> lock(post_mutex_);
        work.swap(posted_);
    }
    for (auto& fn : work) go(std::move(fn), FiberOptions{"posted"});
}

void Scheduler::post(std::function<void()> fn) {
    {
        std::lock_guard<std::mutex> lock(post_mutex_);
        posted_.push_back(std::move(fn));
    }
    if (!post_pending_.exchange(true, std::memory_order_acq_rel)) poller_.wake();
}

void Scheduler::reclaim_parked() {
    while (Fiber* f = reclaim_head_) {
        if (now_ - f->parked_at < options_.reclaim_after) break;
        unlist_reclaim(f);
        if (options_.reclaim == StackReclaim::compact) {
            StackPool::reclaim(f->stack, f->ctx);
            f->compacted = StackPool::is_compacted(f->stack);
        } else {
            StackPool::trim(f->stack, f->ctx);
        }
        ++counters_.reclaimed;
    }
}

void Scheduler::check_deadlock() const {
    if (live_ == 0 || io_waiters_ > 0 || holds_ > 0 || !timers_.empty() || run_head_) return;
    if (signals_waiting(this)) return;
    signal_safe_write("tendril: fatal: all fibers are asleep - deadlock!\n");
    dump(2);
    std::abort();
}

void Scheduler::run() {
    if (running_) fatal("Scheduler::run() called from inside a fiber");
    Scheduler* saved = t_scheduler;
    t_scheduler = this;
    stop_requested_ = false;
    int rounds = 0;
    Instant last_poll = Clock::now();
    while (!stop_requested_) {
        now_ = Clock::now();
        run_ready();
        // Done when no fiber is left and no Timer is pending.
        if ((live_ == 0 && timers_.empty()) || stop_requested_) break;
        now_ = Clock::now();
        Duration timeout = Duration::max();
        if (run_head_) {
            // Busy: skip the syscall unless I/O has waited long enough.
            if (++rounds < kRoundsPerPoll && now_ - last_poll < std::chrono::milliseconds(1)) {
                fire_timers();
                continue;
            }
            timeout = Duration::zero();
        } else if (post_pending_.load(std::memory_order_acquire) || dump_requested_.load()) {
            timeout = Duration::zero();
        } else {
            if (!timers_.empty()) timeout = timers_.next() > now_ ? timers_.next() - now_ : Duration::zero();
            if (reclaim_head_) {
                Duration r = reclaim_head_->parked_at + options_.reclaim_after - now_;
                if (r < Duration::zero()) r = Duration::zero();
                if (r < timeout) timeout = r;
            }
            // Freed stacks give their pages back after a while, idle or not.
            Instant trim = StackPool::thread_trim_due();
            if (trim != Instant::max() && timeout != Duration::max()) {
                Duration t = trim > now_ ? trim - now_ : Duration::zero();
                if (t < timeout) timeout = t;
            } else if (trim != Instant::max() && live_ > 0) {
                timeout = trim > now_ ? trim - now_ : Duration::zero();
            }
            if (timeout == Duration::max()) check_deadlock();
        }
        rounds = 0;
        poll_io(timeout);
        last_poll = now_ = Clock::now();
        fire_timers();
        if (post_pending_.load(std::memory_order_acquire)) run_posted();
        signals_dispatch(this);
        if (dump_requested_.exchange(false)) dump(2);
        if (reclaim_head_) reclaim_parked();
        if (now_ >= next_trim_) {
            StackPool::trim_thread(now_);
            next_trim_ = now_ + std::chrono::milliseconds(100);
        }
    }
    t_scheduler = saved;
}

void Scheduler::dump(int fd) const {
    char line[512];
    int n = std::snprintf(line, sizeof line, "tendril: %zu live fibers on scheduler %p (poller %s)\n",
                          live_, static_cast<const void*>(this), Poller::backend());
    ssize_t w = ::write(fd, line, static_cast<std::size_t>(n));
    Instant now = Clock::now();
    for (const Fiber* f = all_; f; f = f->all_next) {
        n = std::snprintf(line, sizeof line, "  fiber %" PRIu64 " '%s' %s", f->id, f->name,
                          to_string(f->state));
        if (f->state == FiberState::parked) {
            n += std::snprintf(line + n, sizeof line - n, " on %s (%p) for %.1f ms",
                               f->wait_reason ? f->wait_reason : "?", f->wait_object,
                               to_ms(now - f->parked_at));
            if (f->deadline != Instant::max())
                n += std::snprintf(line + n, sizeof line - n, ", deadline in %.1f ms",
                                   to_ms(f->deadline - now));
            if (f->compacted) n += std::snprintf(line + n, sizeof line - n, " [stack compacted]");
        }
        if (f->cancel_requested) n += std::snprintf(line + n, sizeof line - n, " [cancel requested]");
        n += std::snprintf(line + n, sizeof line - n, "\n");
        w = ::write(fd, line, static_cast<std::size_t>(std::min<int>(n, sizeof line - 1)));
    }
    (void)w;
}

// --- FiberHandle ---------------------------------------------------------------

FiberHandle::FiberHandle(Fiber* f) : f_(f) {
    if (f_) ++f_->refs;
}
FiberHandle::FiberHandle(const FiberHandle& o) : f_(o.f_) {
    if (f_) ++f_->refs;
}
FiberHandle::~FiberHandle() {
    if (f_) f_->sched->release_ref(f_);
}
bool FiberHandle::done() const { return !f_ || f_->state == FiberState::done; }
std::uint64_t FiberHandle::id() const { return f_ ? f_->id : 0; }
const char* FiberHandle::name() const { return f_ ? f_->name : ""; }

Status FiberHandle::join(Deadline deadline) {
    if (done()) return Status::ok;
    Fiber* self = Scheduler::current_fiber();
    if (!self) fatal("FiberHandle::join() called outside a fiber");
    if (self == f_) fatal("fiber '%s' joins itself", self->name);
    self->node.fiber = self;
    self->node.select = nullptr;
    f_->joiners.push_back(&self->node);
    return f_->sched->park("join", f_, unlink_wait_node, deadline);
}

void FiberHandle::cancel() {
    if (f_) f_->sched->cancel(f_);
}

// --- the free functions --------------------------------------------------------

namespace {
Scheduler& need_scheduler(const char* what) {
    Scheduler* s = Scheduler::current();
    if (!s || !Scheduler::current_fiber()) fatal("%s called outside a fiber", what);
    return *s;
}
}  // namespace

Status wait_in(WaitQueue& queue, const char* reason, const void* object, Deadline deadline, void* slot) {
    Scheduler& s = need_scheduler(reason);
    Fiber* f = Scheduler::current_fiber();
    WaitNode& n = f->node;
    n.fiber = f;
    n.select = nullptr;
    n.slot = slot;
    n.flags = 0;
    queue.push_back(&n);
    return s.park(reason, object, unlink_wait_node, deadline);
}

void yield() {
    Scheduler& s = need_scheduler("yield()");
    s.yield_current();
}

Status sleep_until(Deadline deadline) {
    Scheduler& s = need_scheduler("sleep");
    if (deadline.is_never()) return s.park("sleep", nullptr, nullptr, deadline);
    Status st = s.park("sleep", nullptr, nullptr, deadline);
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
    Fiber* f = Scheduler::current_fiber();
    return f ? f->id : 0;
}
const char* name() {
    Fiber* f = Scheduler::current_fiber();
    return f ? f->name : "";
}
void set_name(std::string_view name) {
    Fiber* f = Scheduler::current_fiber();
    if (!f) return;
    std::size_t n = std::min(name.size(), Fiber::kNameMax - 1);
    std::memcpy(f->name, name.data(), n);
    f->name[n] = 0;
}
bool cancelled() {
    Fiber* f = Scheduler::current_fiber();
    return f && f->cancel_requested && f->shield_depth == 0;
}
}  // namespace this_fiber

CancelShield::CancelShield() : f_(Scheduler::current_fiber()) {
    if (f_) ++f_->shield_depth;
}
CancelShield::~CancelShield() {
    if (f_) --f_->shield_depth;
}

StackPin::StackPin() : f_(Scheduler::current_fiber()) {
    if (f_) ++f_->pin_depth;
}
StackPin::~StackPin() {
    if (f_) --f_->pin_depth;
}

}  // namespace tendril
