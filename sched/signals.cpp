// Signal delivery to fibers and the SIGQUIT dump (see signals.hpp).
#include "tendril/sched/signals.hpp"

#include "tendril/core/fatal.hpp"
#include "tendril/sched/detail/fiber.hpp"
#include "tendril/sched/detail/scheduler_core.hpp"
#include "tendril/sched/scheduler.hpp"
#include "tendril/sched/select.hpp"

#include <signal.h>

#include <atomic>
#include <mutex>

namespace tendril {

namespace {

constexpr int kMaxSchedulers = 256;
std::atomic<Scheduler*> g_schedulers[kMaxSchedulers];
std::atomic<std::uint64_t> g_pending{0};
std::atomic<std::uint64_t> g_installed{0};
std::mutex g_mutex;
// SignalSets per scheduler, in registration order; guarded by the scheduler's thread.
thread_local SignalSet* t_sets = nullptr;

void wake_all() noexcept {
    for (auto& slot : g_schedulers)
        if (Scheduler* s = slot.load(std::memory_order_acquire)) s->core().wake_poller();
}

void on_signal(int sig) {
    if (sig > 0 && sig < 64) g_pending.fetch_or(std::uint64_t(1) << sig, std::memory_order_acq_rel);
    wake_all();
}

void on_sigquit(int) { request_dumps(); }

void install(int sig) {
    std::uint64_t bit = std::uint64_t(1) << sig;
    if (g_installed.load() & bit) return;
    std::lock_guard<std::mutex> lock(g_mutex);
    if (g_installed.load() & bit) return;
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
    g_installed.fetch_or(bit);
}

}  // namespace

void signals_register(Scheduler* s) {
    std::lock_guard<std::mutex> lock(g_mutex);
    for (auto& slot : g_schedulers) {
        Scheduler* expected = nullptr;
        if (slot.compare_exchange_strong(expected, s)) break;
    }
    // SIGQUIT prints the fibers of every scheduler, as Go prints goroutines,
    // unless the program handles SIGQUIT itself.
    static bool quit_done = false;
    if (!quit_done) {
        quit_done = true;
        struct sigaction old{};
        ::sigaction(SIGQUIT, nullptr, &old);
        if (old.sa_handler == SIG_DFL) {
            struct sigaction sa{};
            sa.sa_handler = on_sigquit;
            sa.sa_flags = SA_RESTART;
            sigemptyset(&sa.sa_mask);
            ::sigaction(SIGQUIT, &sa, nullptr);
        }
    }
}

void signals_unregister(Scheduler* s) {
    std::lock_guard<std::mutex> lock(g_mutex);
    for (auto& slot : g_schedulers) {
        Scheduler* expected = s;
        if (slot.compare_exchange_strong(expected, nullptr)) break;
    }
}

void request_dumps() noexcept {
    for (auto& slot : g_schedulers)
        if (Scheduler* s = slot.load(std::memory_order_acquire)) s->core().request_dump();
}

void signals_dispatch(Scheduler* s) {
    if (g_pending.load(std::memory_order_acquire) == 0) return;
    for (SignalSet* set = t_sets; set; set = set->next_) {
        if (set->sched_ != s || set->waiters_.empty()) continue;
        std::uint64_t got = g_pending.fetch_and(~set->mask_, std::memory_order_acq_rel) & set->mask_;
        if (!got) continue;
        int sig = __builtin_ctzll(got);
        // Signals other than the first stay pending for the next wait().
        if (got & ~(std::uint64_t(1) << sig))
            g_pending.fetch_or(got & ~(std::uint64_t(1) << sig), std::memory_order_acq_rel);
        WaitNode* w = set->waiters_.pop_front();
        w->flags = static_cast<std::uint32_t>(sig);
        wake_node(w, Status::ok);
    }
}

bool signals_waiting(const Scheduler* s) {
    for (SignalSet* set = t_sets; set; set = set->next_)
        if (set->sched_ == s && !set->waiters_.empty()) return true;
    return false;
}

SignalSet::SignalSet(std::initializer_list<int> signals) : sched_(Scheduler::current()) {
    for (int sig : signals) {
        if (sig <= 0 || sig >= 64) fatal("SignalSet: bad signal number %d", sig);
        mask_ |= std::uint64_t(1) << sig;
        install(sig);
    }
    next_ = t_sets;
    t_sets = this;
}

SignalSet::~SignalSet() {
    for (SignalSet** p = &t_sets; *p; p = &(*p)->next_)
        if (*p == this) {
            *p = next_;
            break;
        }
    while (WaitNode* w = waiters_.pop_front()) wake_node(w, Status::closed);
}

int SignalSet::wait(Deadline deadline, Status* status) {
    Fiber* f = Scheduler::current_fiber();
    if (!f) fatal("SignalSet::wait() called outside a fiber");
    std::uint64_t got = g_pending.fetch_and(~mask_, std::memory_order_acq_rel) & mask_;
    if (got) {
        int sig = __builtin_ctzll(got);
        if (got & ~(std::uint64_t(1) << sig))
            g_pending.fetch_or(got & ~(std::uint64_t(1) << sig), std::memory_order_acq_rel);
        if (status) *status = Status::ok;
        return sig;
    }
    // The dispatcher (this thread's loop) puts the signal in the node's flags.
    Status st = wait_in(waiters_, "signal", this, deadline);
    if (status) *status = st;
    return st == Status::ok ? static_cast<int>(f->node.flags) : 0;
}

}  // namespace tendril
