// The scheduler (see scheduler.hpp for the loop and its rules, and
// detail/scheduler_core.hpp for the internal interface).
#include "tendril/sched/scheduler.hpp"

#include "tendril/core/context.hpp"
#include "tendril/core/fatal.hpp"
#include "tendril/sched/detail/poll_table.hpp"
#include "tendril/sched/detail/scheduler_core.hpp"
#include "tendril/sched/log_writer.hpp"
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
thread_local detail::SchedulerCore* t_core = nullptr;
thread_local Fiber* t_fiber = nullptr;

// Schedulers alive in the process. With more than one, a fiber parked on a
// shared channel may be woken by another thread, so no single scheduler can
// tell a deadlock from a wait.
std::atomic<int> g_live_schedulers{0};

// The C++ runtime keeps "the exceptions being handled" per thread. A fiber
// that parks inside a catch block would otherwise share that list with every
// other fiber of the thread (folly::fibers and Boost.Fiber swap it too).
struct EhGlobals {
    void* caught;
    unsigned int uncaught;
};
EhGlobals* eh_globals() { return reinterpret_cast<EhGlobals*>(abi::__cxa_get_globals()); }

// A context's saved copy of that state: two words (a fiber's eh_globals, the
// loop's main_eh_).
void save_eh(const void* g, void* slot[2]) {
    auto* e = static_cast<const EhGlobals*>(g);
    slot[0] = e->caught;
    slot[1] = reinterpret_cast<void*>(static_cast<std::uintptr_t>(e->uncaught));
}
void load_eh(void* g, void* const slot[2]) {
    auto* e = static_cast<EhGlobals*>(g);
    e->caught = slot[0];
    e->uncaught = static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(slot[1]));
}

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
    if (f->get_state() != FiberState::parked || f->deadline == Instant::max()) return;
    if (f->deadline > f->sched->now()) {
        f->sched->timers().insert(n, f->deadline);
        return;
    }
    f->sched->interrupt(f, Status::timeout);
}

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

Duration until(Instant t, Instant now) { return t > now ? t - now : Duration::zero(); }

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

namespace detail {

// --- life of a scheduler -------------------------------------------------------

SchedulerCore::SchedulerCore(Scheduler& owner, SchedulerOptions options)
    : owner_(owner),
      options_(with_env(options)),
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
    g_live_schedulers.fetch_add(1, std::memory_order_relaxed);
}

void SchedulerCore::finish_all() {
    if (live_ > 0 && !running_) {
        for (Fiber* f : all_) cancel(f);
        run();
    }
}

SchedulerCore::~SchedulerCore() {
    for (RemoteWake& w : wakes_) delete w.delivery;
    g_live_schedulers.fetch_sub(1, std::memory_order_relaxed);
}

SchedulerCore* SchedulerCore::current() noexcept { return t_core; }
Fiber* SchedulerCore::current_fiber() noexcept { return t_fiber; }

std::uint32_t SchedulerCore::random() noexcept {
    std::uint32_t x = rng_;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_ = x;
}

// --- spawning ------------------------------------------------------------------

Fiber* SchedulerCore::create_fiber(const FiberOptions& options) {
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
    f->tsan_fiber = sanitizer_context_create();
    return f;
}

void* SchedulerCore::reserve_callable(Fiber* f, std::size_t size, std::size_t align) {
    if (align < 16) align = 16;
    auto top = reinterpret_cast<std::uintptr_t>(f->stack.hi) - size;
    top &= ~(align - 1);
    if (top < reinterpret_cast<std::uintptr_t>(f->stack.lo) + f->stack.size() / 2)
        fatal("fiber '%s': its function object (%zu bytes) does not fit its stack", f->name, size);
    return reinterpret_cast<void*>(top);
}

FiberHandle SchedulerCore::start_fiber(Fiber* f) {
    // The context starts below the function object stored at the stack top.
    auto* top = static_cast<char*>(f->callable);
    std::size_t usable = static_cast<std::size_t>(top - f->stack.lo);
    f->ctx = make_context(top, usable, &SchedulerCore::entry);
    all_.push_front(f);
    ++live_;
    FiberHandle h(f);
    run_queue_.push_back(f);
    return h;
}

void SchedulerCore::entry(Transfer t) noexcept {
    Fiber* f = t_fiber;  // enter() made it current before the jump
    SchedulerCore* s = f->sched;
    StackBounds from;
    context_started(&from);
    if (!t.data && from.lo) {  // started from the loop: learn the thread's stack
        s->main_stack_lo_ = from.lo;
        s->main_stack_size_ = from.size;
    }
    s->resumed(t);
    f->invoke(f->callable);  // noexcept: see on_terminate
    s->exit_current();
}

// --- switching -----------------------------------------------------------------
//
// The loop hands the CPU to the first fiber of a batch; a fiber that parks
// hands it straight to the next one (the batch is a member for that), and
// only the last of a batch, or one that ends, goes back to the loop. One
// switch per wake instead of two, and since the fibers of a server mostly
// park at the same call site, the CPU's return predictions stay right
// across the switch (with core/context.hpp's jump_context; a detour through
// the loop's frames broke them all).
// Whoever jumps sends its own Fiber* (nullptr: the loop), so the context
// that resumes knows where to file the one it left.
//
// The pieces are inlined into their few callers: every call frame between a
// fiber's wait and the jump is one more return that mispredicts after a
// resume from the loop.
#define TENDRIL_HOT_PATH [[gnu::always_inline]] inline

TENDRIL_HOT_PATH void SchedulerCore::enter(Fiber* f) {
    make_resident(f);
    running_ = f;
    t_fiber = f;
    f->set_state(FiberState::running);
    load_eh(eh_, f->eh_globals);
}

TENDRIL_HOT_PATH void SchedulerCore::leave(Fiber* f) {
    save_eh(eh_, f->eh_globals);
    ++counters_.switches;
    if (!f->pool->options().guard && std::memcmp(f->stack.lo, &kCanary, sizeof kCanary) != 0)
        fatal("fiber stack overflow in fiber '%s' (unguarded %zu KiB stack: its canary was "
              "overwritten)", f->name, f->stack.size() / 1024);
}

TENDRIL_HOT_PATH void SchedulerCore::resumed(Transfer t) {
    if (t.data) static_cast<Fiber*>(t.data)->ctx = t.fctx;
    else main_ctx_ = t.fctx;
}

void SchedulerCore::switch_to(Fiber* f) {
    save_eh(eh_, main_eh_);
    enter(f);

    Transfer t = switch_context(f->ctx, nullptr, &main_fake_stack_, StackBounds{f->stack.lo, f->stack.size()},
                                f->tsan_fiber);

    // Back from the last fiber of the chain that f began.
    Fiber* last = static_cast<Fiber*>(t.data);
    last->ctx = t.fctx;
    load_eh(eh_, main_eh_);
    running_ = nullptr;
    t_fiber = nullptr;
    if (last->get_state() == FiberState::done) finish(last);
}

TENDRIL_HOT_PATH Transfer SchedulerCore::switch_away(Fiber* f) {
    leave(f);
    if (Fiber* next = batch_.pop_front()) {
        enter(next);
        return switch_context(next->ctx, f, &f->sanitizer_fake_stack,
                              StackBounds{next->stack.lo, next->stack.size()}, next->tsan_fiber);
    }
    return switch_context(main_ctx_, f, &f->sanitizer_fake_stack, StackBounds{main_stack_lo_, main_stack_size_},
                          main_tsan_fiber_);
}

void SchedulerCore::exit_current() {
    Fiber* f = running_;
    f->set_state(FiberState::done);
    leave(f);
    // To the loop, which frees the stack this runs on. nullptr fake-stack
    // slot: ASan frees this fiber's fake stack.
    switch_context(main_ctx_, f, nullptr, StackBounds{main_stack_lo_, main_stack_size_}, main_tsan_fiber_);
    __builtin_unreachable();
}

void SchedulerCore::finish(Fiber* f) {
    timers_.cancel(&f->timer);  // lazily left in the heap; the record goes away
    f->pool->release(f->stack);
    f->stack = Stack{};
    sanitizer_context_destroy(f->tsan_fiber);
    f->tsan_fiber = nullptr;
    {
        std::lock_guard<SpinLock> lock(f->joiners_lock);
        while (WaitNode* w = f->joiners.pop_claimed()) wake_claimed(w, Status::ok);
    }
    all_.remove(f);
    --live_;
    if (f->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete f;
}

// --- parking -------------------------------------------------------------------

Status SchedulerCore::park(const char* reason, const void* object, bool (*unlink)(Fiber*), Deadline deadline) {
    Fiber* f = running_;
    if (!f) fatal("park() called outside a fiber (%s)", reason);
    // Ending the wait at once needs its registrations undone first; if a
    // waker on another thread has claimed it meanwhile, its wake is owed
    // and the fiber parks for it (without a deadline: it is on the way).
    if (f->cancel_requested && f->shield_depth == 0) {
        if (!unlink || unlink(f)) return Status::cancelled;
        deadline = Deadline::never();
    } else if (!deadline.is_never() && deadline.when() <= now_ && deadline.expired()) {
        if (!unlink || unlink(f)) return Status::timeout;
        deadline = Deadline::never();
    }
    if (!deadline.is_never()) {
        f->deadline = deadline.when();
        if (!f->timer.queued() || f->timer.when > f->deadline) timers_.insert(&f->timer, f->deadline);
    } else {
        f->deadline = Instant::max();
    }
    f->wait_reason = reason;
    f->wait_object = object;
    f->wait_unlink = unlink;
    f->set_state(FiberState::parked);
    f->parked_at = now_;
    f->reclaimed = false;
    if (options_.reclaim != StackReclaim::none && f->pin_depth == 0) reclaim_[f->reclaim_level].push_back(f);
    resumed(switch_away(f));
    return f->wake_status;
}

void SchedulerCore::yield_current() {
    Fiber* f = running_;
    f->set_state(FiberState::runnable);
    run_queue_.push_back(f);
    resumed(switch_away(f));
}

void SchedulerCore::ready(Fiber* f, Status status) {
    if (f->get_state() != FiberState::parked) return;
    f->deadline = Instant::max();  // the heap entry, if any, is dropped when it fires
    if (reclaim_[f->reclaim_level].contains(f)) reclaim_[f->reclaim_level].remove(f);
    // A fiber woken soon after its stack was reclaimed pays for the copy and
    // the page faults for nothing (a keep-alive connection between requests
    // at 1,000 connections waits ~15 ms): it waits twice as long next time,
    // up to 32x. One that stays parked long after becomes eager again, so a
    // connection that goes quiet (a parked comet waiter) still costs its
    // few KB.
    if (f->reclaimed) {
        Duration parked = now_ - f->parked_at, delay = reclaim_delay(f->reclaim_level);
        if (parked < 4 * delay && f->reclaim_level + 1 < kReclaimLevels) ++f->reclaim_level;
        else if (parked >= 16 * delay && f->reclaim_level > 0) --f->reclaim_level;
    }
    f->wake_status = status;
    f->wait_unlink = nullptr;
    f->wait_reason = nullptr;
    f->wait_object = nullptr;
    ++f->wait_seq;
    f->set_state(FiberState::runnable);
    run_queue_.push_back(f);
}

void SchedulerCore::interrupt(Fiber* f, Status status) {
    if (f->get_state() != FiberState::parked) return;
    if (f->wait_unlink && !f->wait_unlink(f)) {
        f->deadline = Instant::max();  // claimed by a waker: its wake ends the wait
        return;
    }
    ready(f, status);
}

void SchedulerCore::cancel(Fiber* f) {
    if (f->get_state() == FiberState::done) return;
    f->cancel_requested = true;
    if (f->get_state() == FiberState::parked && f->shield_depth == 0) interrupt(f, Status::cancelled);
}

void SchedulerCore::make_resident(Fiber* f) {
    if (!f->compacted) return;
    StackPool::make_resident(f->stack);
    f->compacted = false;
    ++counters_.restored;
}

// --- the inbox -------------------------------------------------------------------

void SchedulerCore::post(std::function<void()> fn) {
    {
        std::lock_guard<std::mutex> lock(inbox_mutex_);
        posted_.push_back(std::move(fn));
    }
    if (!inbox_pending_.exchange(true, std::memory_order_acq_rel)) poller_.wake();
}

void SchedulerCore::post_call(std::function<void()> fn) {
    {
        std::lock_guard<std::mutex> lock(inbox_mutex_);
        calls_.push_back(std::move(fn));
    }
    if (!inbox_pending_.exchange(true, std::memory_order_acq_rel)) poller_.wake();
}

void SchedulerCore::post_wake(Fiber* f, std::uint64_t seq, Status status, Delivery* d, void* slot) {
    {
        std::lock_guard<std::mutex> lock(inbox_mutex_);
        wakes_.push_back(RemoteWake{f, seq, status, d, slot});
    }
    if (!inbox_pending_.exchange(true, std::memory_order_acq_rel)) poller_.wake();
}

void SchedulerCore::take_inbox() {
    inbox_pending_.store(false, std::memory_order_release);
    std::vector<RemoteWake> wakes;
    std::vector<std::function<void()>> calls, posted;
    {
        std::lock_guard<std::mutex> lock(inbox_mutex_);
        wakes.swap(wakes_);
        calls.swap(calls_);
        posted.swap(posted_);
    }
    ++counters_.inbox_batches;
    for (RemoteWake& w : wakes) {
        Fiber* f = w.fiber;
        // The claim protocol owes exactly this wait one wake; anything else
        // would be a bug, and waking a later wait with it would be worse.
        if (f->get_state() != FiberState::parked || f->wait_seq != w.seq)
            fatal("a wake from another thread for fiber '%s' finds it not in that wait", f->name);
        if (w.delivery) {
            make_resident(f);
            w.delivery->deliver(w.slot);
            delete w.delivery;
        }
        ready(f, w.status);
        ++counters_.remote_wakes;
    }
    for (auto& fn : calls) fn();
    for (auto& fn : posted) owner_.go(std::move(fn), FiberOptions{"posted"});
}

// --- descriptors ---------------------------------------------------------------

PollDesc* SchedulerCore::poll_open(int fd) {
    PollDesc* pd = polls_->get(fd);
    ++pd->gen;
    pd->open = true;
    // Unknown readiness counts as ready: the first call tries the syscall
    // (a new connection's request is usually there already). A descriptor
    // the poller cannot watch (a regular file) stays ready for good.
    pd->readable = pd->writable = true;
    pd->hup = pd->err = false;
    pd->reader = pd->writer = nullptr;
    pd->polled = poller_.add(*pd);
    return pd;
}

void SchedulerCore::poll_release(PollDesc* pd) {
    if (pd->open && pd->polled) poller_.remove(*pd, false);
    poll_close(pd);
}

void SchedulerCore::poll_close(PollDesc* pd) {
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
bool unlink_io(Fiber* f) {
    auto* pd = static_cast<PollDesc*>(f->node.slot);
    if (pd->reader == &f->node) pd->reader = nullptr;
    else if (pd->writer == &f->node) pd->writer = nullptr;
    else return false;
    f->sched->io_detached();
    return true;
}
}  // namespace

Status SchedulerCore::wait_io(PollDesc* pd, WaitNode*& slot, std::uint32_t flags, const char* reason,
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

Status SchedulerCore::wait_readable(PollDesc* pd, Deadline deadline) {
    if (!pd->open) return Status::closed;
    if (pd->readable) return Status::ok;
    return wait_io(pd, pd->reader, 0, "fd read", deadline);
}

Status SchedulerCore::wait_writable(PollDesc* pd, Deadline deadline) {
    if (!pd->open) return Status::closed;
    if (pd->writable) return Status::ok;
    return wait_io(pd, pd->writer, 0, "fd write", deadline);
}

Status SchedulerCore::wait_hangup(PollDesc* pd, Deadline deadline) {
    if (!pd->open) return Status::closed;
    if (pd->hup || pd->err) return Status::ok;
    return wait_io(pd, pd->reader, kWaitHangupOnly, "fd hang-up", deadline);
}

// --- the loop ------------------------------------------------------------------

void SchedulerCore::run_ready() {
    batch_.swap(run_queue_);  // empty: the last batch ran to its end
    while (Fiber* f = batch_.pop_front()) switch_to(f);
}

void SchedulerCore::poll_io(Duration timeout) {
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

void SchedulerCore::fire_timers() {
    while (TimerNode* n = timers_.pop_due(now_)) n->fire(n);
}

void SchedulerCore::reclaim_parked() {
    for (int level = 0; level < kReclaimLevels; ++level) {
        auto& list = reclaim_[level];
        while (Fiber* f = list.front()) {
            if (now_ - f->parked_at < reclaim_delay(level)) break;
            list.remove(f);
            if (options_.reclaim == StackReclaim::compact) {
                StackPool::reclaim(f->stack, f->ctx);
                f->compacted = StackPool::is_compacted(f->stack);
            } else {
                StackPool::trim(f->stack, f->ctx);
            }
            f->reclaimed = true;
            ++counters_.reclaimed;
        }
    }
}

// How long the loop may sleep in the poller when no fiber is runnable: until
// the next timer, the next parked stack due for reclaiming, or the next
// trim of freed stacks; forever when none is pending.
Duration SchedulerCore::poll_timeout() {
    if (inbox_pending_.load(std::memory_order_acquire) || dump_requested_.load()) return Duration::zero();
    Duration timeout = Duration::max();
    if (!timers_.empty()) timeout = until(timers_.next(), now_);
    for (int level = 0; level < kReclaimLevels; ++level)
        if (Fiber* oldest = reclaim_[level].front())
            timeout = std::min(timeout, until(oldest->parked_at + reclaim_delay(level), now_));
    // Freed stacks give their pages back after a while, idle or not (but an
    // empty scheduler is about to return anyway).
    Instant trim = StackPool::thread_trim_due();
    if (trim != Instant::max() && (timeout != Duration::max() || live_ > 0))
        timeout = std::min(timeout, until(trim, now_));
    return timeout;
}

void SchedulerCore::check_deadlock() const {
    if (live_ == 0 || io_waiters_ > 0 || holds_ > 0 || !timers_.empty() || !run_queue_.empty()) return;
    if (g_live_schedulers.load(std::memory_order_relaxed) > 1) return;  // another thread may wake us
    if (signals_waiting(&owner_)) return;
    signal_safe_write("tendril: fatal: all fibers are asleep - deadlock!\n");
    dump(2);
    std::abort();
}

void SchedulerCore::run() {
    if (running_) fatal("Scheduler::run() called from inside a fiber");
    Scheduler* saved = t_scheduler;
    SchedulerCore* saved_core = t_core;
    t_scheduler = &owner_;
    t_core = this;
    main_tsan_fiber_ = sanitizer_context_current();
    // This thread's, for good: looked up once (a call and a TLS lookup in
    // libstdc++), not on every switch.
    eh_ = eh_globals();
    stop_requested_ = false;
    int rounds = 0;
    Instant last_poll = Clock::now();
    while (!stop_requested_) {
        now_ = Clock::now();
        run_ready();
        // Done when no fiber is left and no Timer is pending.
        if ((live_ == 0 && timers_.empty()) || stop_requested_) break;
        now_ = Clock::now();
        Duration timeout = Duration::zero();
        if (!run_queue_.empty()) {
            // Busy: skip the syscall unless I/O has waited long enough.
            if (++rounds < kRoundsPerPoll && now_ - last_poll < std::chrono::milliseconds(1)) {
                fire_timers();
                if (inbox_pending_.load(std::memory_order_acquire)) take_inbox();
                continue;
            }
        } else {
            timeout = poll_timeout();
            if (timeout == Duration::max()) check_deadlock();
        }
        rounds = 0;
        poll_io(timeout);
        last_poll = now_ = Clock::now();
        fire_timers();
        if (inbox_pending_.load(std::memory_order_acquire)) take_inbox();
        signals_dispatch(&owner_);
        if (dump_requested_.exchange(false)) dump(2);
        reclaim_parked();
        if (now_ >= next_trim_) {
            StackPool::trim_thread(now_);
            next_trim_ = now_ + std::chrono::milliseconds(100);
        }
    }
    t_scheduler = saved;
    t_core = saved_core;
}

void SchedulerCore::dump(int fd) const {
    char line[512];
    int n = std::snprintf(line, sizeof line, "tendril: %zu live fibers on scheduler %p (poller %s)\n",
                          live_, static_cast<const void*>(&owner_), Poller::backend());
    ssize_t w = ::write(fd, line, static_cast<std::size_t>(n));
    Instant now = Clock::now();
    for (const Fiber* f : all_) {
        FiberState st = f->get_state();
        n = std::snprintf(line, sizeof line, "  fiber %" PRIu64 " '%s' %s", f->id, f->name, to_string(st));
        if (st == FiberState::parked) {
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

}  // namespace detail

// --- Scheduler, the public face ---------------------------------------------------

Scheduler::Scheduler(SchedulerOptions options) : core_(std::make_unique<detail::SchedulerCore>(*this, options)) {
    // Current from construction on (so that sockets and servers can be made
    // before run()), and until destruction.
    prev_current_ = t_scheduler;
    prev_core_ = t_core;
    t_scheduler = this;
    t_core = core_.get();
    signals_register(this);
}

Scheduler::~Scheduler() {
    core_->finish_all();
    signals_unregister(this);
    t_scheduler = prev_current_;
    t_core = prev_core_;
}

Scheduler* Scheduler::current() noexcept { return t_scheduler; }
Fiber* Scheduler::current_fiber() noexcept { return t_fiber; }
void Scheduler::run() { core_->run(); }
void Scheduler::stop() noexcept { core_->stop(); }
void Scheduler::post(std::function<void()> fn) { core_->post(std::move(fn)); }
TimerHeap& Scheduler::timers() { return core_->timers(); }
Instant Scheduler::now() const { return core_->now(); }
Deadline Scheduler::deadline_after(Duration d) const { return core_->deadline_after(d); }
std::size_t Scheduler::live_fibers() const { return core_->live_fibers(); }
const SchedulerOptions& Scheduler::options() const { return const_cast<detail::SchedulerCore&>(*core_).options(); }
void Scheduler::set_reclaim(StackReclaim r, Duration after) {
    core_->options().reclaim = r;
    core_->options().reclaim_after = after;
}
void Scheduler::dump(int fd) const { core_->dump(fd); }
const Scheduler::Counters& Scheduler::counters() const { return core_->counters(); }
LogWriter& Scheduler::log_writer() { return core_->log_writer(); }
const char* Scheduler::poller_backend() noexcept { return Poller::backend(); }

Scheduler::NewFiber Scheduler::prepare(const FiberOptions& options, std::size_t size, std::size_t align) {
    Fiber* f = core_->create_fiber(options);
    return NewFiber{f, core_->reserve_callable(f, size, align)};
}

FiberHandle Scheduler::start(NewFiber f, void (*invoke)(void*)) {
    f.fiber->callable = f.callable;
    f.fiber->invoke = invoke;
    return core_->start_fiber(f.fiber);
}

Scheduler::Hold::Hold(Scheduler& s) : s_(&s) { s_->core_->hold(); }
Scheduler::Hold::~Hold() { s_->core_->unhold(); }

}  // namespace tendril
