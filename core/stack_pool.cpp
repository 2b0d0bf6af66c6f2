// Fiber stack arenas, pooling, compaction and the fault handler (see
// stack_pool.hpp for the why).
//
// Guard pages come in two kinds, chosen once per process:
//  * light (Linux 6.13+): MADV_GUARD_INSTALL puts guard markers in the page
//    tables. The arena stays one read-write mapping however many stacks it
//    holds, so vm.max_map_count no longer bounds the number of fibers, and a
//    compacted stack is simply guarded over its whole length.
//  * mapped (older kernels, BSD): the arena is reserved PROT_NONE and each
//    stack is mprotect()ed read-write, costing two mappings per stack; a
//    compacted stack goes back to PROT_NONE.
//
// Slot life cycle:
//
//   state      pages        access                 reached by
//   ---------  -----------  ---------------------  --------------------------------
//   free/warm  kept         read-write             release() while few are warm
//   free/cold  dropped      read-write (light) or  release() past keep_warm
//                           none (mapped)
//   active     as touched   read-write             acquire(), restore
//   compacted  dropped      faults (guarded)       reclaim() of a parked fiber
//
// compacting/restoring are transient states so that a fault taken on another
// thread (a work-pool thread writing into a parked fiber's frame) waits for
// the owner instead of racing it. Unguarded arenas are never compacted
// (trimmed instead), so nothing can fault there.
#include "tendril/core/stack_pool.hpp"

#include "tendril/core/context.hpp"
#include "tendril/core/fatal.hpp"
#include "tendril/core/time.hpp"

#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define TENDRIL_VALGRIND 1
#endif

namespace tendril {

namespace {

enum SlotState : std::uint8_t { kFree, kActive, kCompacting, kCompacted, kRestoring };

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif

constexpr std::size_t kArenaBytes = std::size_t(1) << 30;  // virtual, per arena
constexpr std::size_t kMaxArenas = 4096;
// Bytes kept below the saved stack pointer when compacting. The switch saved
// its registers above sp, and the ABI red zone (128 bytes on x86-64) is not
// live across a call, so this is slack, not a requirement.
constexpr std::size_t kBelowSp = 128;

// Copy stack bytes without sanitizer checks: a parked stack holds ASan's
// poisoned redzones between frames, and reading them is intended here.
#if defined(__x86_64__)
inline void copy_raw(void* dst, const void* src, std::size_t n) {
    asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}
#else
__attribute__((no_sanitize("address"))) void copy_raw(void* dst, const void* src, std::size_t n) {
    auto* d = static_cast<volatile unsigned char*>(dst);
    auto* s = static_cast<const volatile unsigned char*>(src);
    for (std::size_t i = 0; i < n; ++i) d[i] = s[i];
}
#endif

std::size_t page_size_raw() { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }

char* align_down(const void* p, std::size_t a) {
    return reinterpret_cast<char*>(reinterpret_cast<std::uintptr_t>(p) & ~(a - 1));
}
std::size_t round_up(std::size_t n, std::size_t a) { return (n + a - 1) & ~(a - 1); }

// -1 unknown, 1 light guards work, 0 fall back to mapped guards.
std::atomic<int> g_light_guards{-1};

bool light_guards(char* probe_page) {
    int v = g_light_guards.load(std::memory_order_acquire);
    if (v >= 0) return v == 1;
    // TENDRIL_STACK_GUARDS=mapped forces the fallback (tests cover both).
    const char* force = std::getenv("TENDRIL_STACK_GUARDS");
    bool ok = !(force && std::strcmp(force, "mapped") == 0) &&
              ::madvise(probe_page, page_size_raw(), MADV_GUARD_INSTALL) == 0 &&
              ::madvise(probe_page, page_size_raw(), MADV_GUARD_REMOVE) == 0;
    g_light_guards.store(ok ? 1 : 0, std::memory_order_release);
    return ok;
}

// Guard pages for slots [from, to) of an arena, many per syscall where the
// kernel lets process_madvise() install guards (0.7 us a guard instead of
// 2-3 us with one madvise() each).
void install_guards(char* base, std::size_t slot_size, std::size_t guard, std::size_t from, std::size_t to) {
    static int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
    static std::atomic<bool> batch_ok{true};
    if (pidfd >= 0 && batch_ok.load(std::memory_order_relaxed)) {
        iovec iov[256];
        std::size_t i = from;
        while (i < to) {
            std::size_t n = 0;
            for (; i < to && n < 256; ++i, ++n) iov[n] = {base + i * slot_size, guard};
            long r = ::syscall(SYS_process_madvise, pidfd, iov, n, MADV_GUARD_INSTALL, 0);
            if (r < 0 || static_cast<std::size_t>(r) != n * guard) {
                batch_ok.store(false, std::memory_order_relaxed);
                i -= n;
                break;
            }
        }
        if (i >= to) return;
        from = i;
    }
    for (std::size_t i = from; i < to; ++i)
        if (::madvise(base + i * slot_size, guard, MADV_GUARD_INSTALL) != 0)
            fatal("cannot install a fiber stack guard page: %s", std::strerror(errno));
}

std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

}  // namespace

std::size_t page_size() noexcept {
    static const std::size_t ps = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return ps;
}

struct StackSlot : StackPool::FreeLink {
    std::atomic<std::uint8_t> state{kFree};
    bool guarded = true;
    bool light = false;  // light guard markers rather than mapping protections
    bool rw = false;     // mapped guards: is [lo, hi) currently read-write
#ifdef TENDRIL_VALGRIND
    unsigned valgrind_id = 0;  // here, where it fills padding
#endif
    char* lo = nullptr;
    char* hi = nullptr;
    char* saved = nullptr;  // compacted contents
    char* saved_at = nullptr;
    char* guarded_from = nullptr;  // light guards: the start of the guarded live pages
    std::uint32_t saved_cap = 0;
    std::uint32_t saved_len = 0;
    const char* owner = nullptr;
    std::int64_t freed_at = 0;  // warm: when it was released (steady ns)
};

namespace {
// The free lists hold links; every link is a slot's.
StackSlot* slot_of(StackPool::FreeLink* l) { return static_cast<StackSlot*>(l); }
}  // namespace

struct StackPool::Arena {
    char* base = nullptr;
    std::size_t slot_size = 0;
    std::size_t guard = 0;
    std::size_t nslots = 0;
    std::size_t used = 0;  // slots handed out at least once (bump pointer)
    std::size_t guarded_upto = 0;  // light guards installed for slots below this
    bool light = false;
    StackSlot* slots = nullptr;
    Arena* next = nullptr;
};

namespace {

// Append-only registry read by the signal handler: no locks there.
std::atomic<StackPool::Arena*> g_arenas[kMaxArenas];
std::atomic<std::size_t> g_narenas{0};
std::mutex g_register_mutex;

StackPool::Arena* arena_of(const void* addr) {
    const char* a = static_cast<const char*>(addr);
    std::size_t n = g_narenas.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < n; ++i) {
        StackPool::Arena* ar = g_arenas[i].load(std::memory_order_acquire);
        if (ar && a >= ar->base && a < ar->base + ar->nslots * ar->slot_size) return ar;
    }
    return nullptr;
}

// Bring a compacted slot back. Async-signal-safe (mprotect, a copy, atomics).
// Returns false if the slot is not compacted (nothing to do).
bool restore_slot(StackSlot* s) {
    std::uint8_t st = s->state.load(std::memory_order_acquire);
    for (;;) {
        if (st == kCompacted) {
            if (s->state.compare_exchange_weak(st, kRestoring, std::memory_order_acq_rel)) break;
            continue;
        }
        if (st == kCompacting || st == kRestoring) {
            sched_yield();
            st = s->state.load(std::memory_order_acquire);
            continue;
        }
        return false;
    }
    int rc = s->light ? ::madvise(s->guarded_from, static_cast<std::size_t>(s->hi - s->guarded_from), MADV_GUARD_REMOVE)
                      : ::mprotect(s->lo, static_cast<std::size_t>(s->hi - s->lo), PROT_READ | PROT_WRITE);
    if (rc != 0) {
        signal_safe_write("tendril: fatal: cannot restore a compacted fiber stack\n");
        std::abort();
    }
    copy_raw(s->saved_at, s->saved, s->saved_len);
    s->rw = true;
    s->state.store(kActive, std::memory_order_release);
    return true;
}

struct sigaction g_previous_segv;
std::once_flag g_handler_once;

void on_fault(int sig, siginfo_t* info, void* uctx) {
    void* addr = info->si_addr;
    if (StackPool::Arena* ar = arena_of(addr)) {
        std::size_t off = static_cast<std::size_t>(static_cast<char*>(addr) - ar->base);
        std::size_t idx = off / ar->slot_size;
        StackSlot* s = &ar->slots[idx];
        if (off % ar->slot_size < ar->guard && idx < ar->used) {
            signal_safe_write("tendril: fatal: fiber stack overflow in fiber '");
            signal_safe_write(s->owner ? s->owner : "?");
            signal_safe_write("' (stack of ");
            signal_safe_write_number((ar->slot_size - ar->guard) / 1024);
            signal_safe_write(" KiB; give it a larger StackOptions::size)\n");
            ::signal(SIGABRT, SIG_DFL);
            std::abort();
        }
        if (restore_slot(s)) return;  // the faulting access is retried
    }
    // Not ours: hand over to whoever was there before (ASan, or the default).
    if (g_previous_segv.sa_flags & SA_SIGINFO) {
        if (g_previous_segv.sa_sigaction) {
            g_previous_segv.sa_sigaction(sig, info, uctx);
            return;
        }
    } else if (g_previous_segv.sa_handler != SIG_DFL && g_previous_segv.sa_handler != SIG_IGN) {
        g_previous_segv.sa_handler(sig);
        return;
    }
    ::signal(sig, SIG_DFL);  // returning re-executes the access and dies with SIGSEGV
}

// The handler runs on an alternate stack: on an overflow the fiber's own
// stack has no room left.
struct AltStack {
    void* mem = nullptr;
    std::size_t size = 0;
    AltStack() {
        size = std::max<std::size_t>(64 * 1024, SIGSTKSZ * 4);
        mem = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            mem = nullptr;
            return;
        }
        stack_t ss{};
        ss.ss_sp = mem;
        ss.ss_size = size;
        ::sigaltstack(&ss, nullptr);
    }
    ~AltStack() {
        if (!mem) return;
        stack_t ss{};
        ss.ss_flags = SS_DISABLE;
        ::sigaltstack(&ss, nullptr);
        ::munmap(mem, size);
    }
};

}  // namespace

void StackPool::install_fault_handler() {
    std::call_once(g_handler_once, [] {
        struct sigaction sa{};
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        ::sigaction(SIGSEGV, &sa, &g_previous_segv);
    });
    thread_local AltStack alt;
    (void)alt;
}

namespace {
struct ThreadPools {
    std::vector<StackPool*> pools;
    ~ThreadPools() {
        for (auto* p : pools) delete p;
    }
};
thread_local ThreadPools t_pools;
}  // namespace

StackPool& StackPool::for_thread(const StackOptions& options) {
    std::size_t size = round_up(std::max<std::size_t>(options.size, 16 * 1024), page_size());
    for (StackPool* p : t_pools.pools)
        if (p->options_.size == size && p->options_.guard == options.guard) return *p;
    StackOptions o = options;
    o.size = size;
    t_pools.pools.push_back(new StackPool(o));
    return *t_pools.pools.back();
}

StackPool::StackPool(const StackOptions& options) : options_(options) { install_fault_handler(); }

StackPool::~StackPool() {
    // Arenas stay reserved (the registry never shrinks, so the signal handler
    // never sees a dangling arena); their memory is given back -- except for
    // the arena we are running on (exit() called from inside a fiber).
    char here;
    for (Arena* a = arenas_; a; a = a->next) {
        if (&here >= a->base && &here < a->base + a->nslots * a->slot_size) continue;
        for (std::size_t i = 0; i < a->used; ++i) std::free(a->slots[i].saved);
        ::mmap(a->base, a->nslots * a->slot_size, PROT_NONE,
               MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        a->used = a->nslots;  // nothing more is handed out from here
    }
}

void StackPool::grow() {
    auto* a = new Arena;
    a->guard = options_.guard ? page_size() : 0;
    a->slot_size = options_.size + a->guard;
    a->nslots = std::max<std::size_t>(64, kArenaBytes / a->slot_size);
    void* base = ::mmap(nullptr, a->nslots * a->slot_size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) fatal("cannot reserve %zu bytes for fiber stacks: %s",
                                  a->nslots * a->slot_size, std::strerror(errno));
    a->base = static_cast<char*>(base);
    a->light = options_.guard && light_guards(a->base);
    if (options_.guard && !a->light &&
        ::mprotect(a->base, a->nslots * a->slot_size, PROT_NONE) != 0)
        fatal("cannot protect the fiber stack arena: %s", std::strerror(errno));
    // Slot records are touched lazily, one as each slot is first used.
    void* recs = ::mmap(nullptr, a->nslots * sizeof(StackSlot), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (recs == MAP_FAILED) fatal("cannot allocate fiber stack records: %s", std::strerror(errno));
    a->slots = static_cast<StackSlot*>(recs);
    a->next = arenas_;
    arenas_ = a;
    std::lock_guard<std::mutex> lock(g_register_mutex);
    std::size_t n = g_narenas.load(std::memory_order_relaxed);
    if (n == kMaxArenas) fatal("too many fiber stack arenas");
    g_arenas[n].store(a, std::memory_order_release);
    g_narenas.store(n + 1, std::memory_order_release);
}

Stack StackPool::acquire(const char* owner_name) {
    StackSlot* s = nullptr;
    if (!warm_.empty()) {
        s = slot_of(warm_.pop_front());  // LIFO: the newest warm slot
    } else if (!cold_.empty()) {
        s = slot_of(cold_.pop_front());
    } else {
        Arena* a = arenas_;
        if (!a || a->used == a->nslots) {
            grow();
            a = arenas_;
        }
        std::size_t idx = a->used++;
        s = new (&a->slots[idx]) StackSlot;
        s->guarded = options_.guard;
        s->light = a->light;
        s->lo = a->base + idx * a->slot_size + a->guard;
        s->hi = s->lo + options_.size;
        s->rw = !options_.guard || a->light;
        if (a->light && idx >= a->guarded_upto) {
            std::size_t to = std::min(a->nslots, idx + 256);
            install_guards(a->base, a->slot_size, a->guard, idx, to);
            a->guarded_upto = to;
        }
    }
    if (!s->rw) {
        if (::mprotect(s->lo, options_.size, PROT_READ | PROT_WRITE) != 0)
            fatal("cannot map a fiber stack: %s (vm.max_map_count reached? on kernels before "
                  "6.13 each guarded stack costs two mappings; use StackOptions::guard = false "
                  "beyond ~30,000 fibers)",
                  std::strerror(errno));
        s->rw = true;
    }
    s->owner = owner_name;
    s->state.store(kActive, std::memory_order_release);
    ++nactive_;
#ifdef TENDRIL_VALGRIND
    s->valgrind_id = VALGRIND_STACK_REGISTER(s->lo, s->hi);
#endif
#ifdef TENDRIL_ASAN
    // A previous fiber's frames left poisoned redzones behind.
    __asan_unpoison_memory_region(s->lo, options_.size);
#endif
    return Stack{s->lo, s->hi, s};
}

void StackPool::release(Stack stack) {
    StackSlot* s = stack.slot;
    if (!s) return;
#ifdef TENDRIL_VALGRIND
    VALGRIND_STACK_DEREGISTER(s->valgrind_id);
#endif
    bool pages_gone = s->state.load(std::memory_order_acquire) == kCompacted;
    std::free(s->saved);
    s->saved = nullptr;
    s->saved_cap = s->saved_len = 0;
    s->owner = nullptr;
    s->state.store(kFree, std::memory_order_release);
    --nactive_;
    if (!pages_gone) {
        // Warm: reused first (no syscall, no page fault); trim_idle() gives
        // the pages back once it has stayed unused for a while.
        s->freed_at = steady_ns();
        warm_.push_front(s);
        if (warm_.size() > kMaxWarm) trim_idle(Instant::max(), warm_.size() - kMaxWarm);
        return;
    }
    make_cold(s, pages_gone);
}

void StackPool::make_cold(StackSlot* s, bool pages_gone) {
    if (pages_gone && s->light) {
        ::madvise(s->guarded_from, static_cast<std::size_t>(s->hi - s->guarded_from), MADV_GUARD_REMOVE);
    } else if (!pages_gone) {
        if (s->guarded && !s->light) {
            ::mmap(s->lo, options_.size, PROT_NONE,
                   MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            s->rw = false;
        } else {
            ::madvise(s->lo, options_.size, MADV_DONTNEED);
        }
    }
    cold_.push_front(s);
}

std::size_t StackPool::reclaim(Stack stack, const void* sp) {
    StackSlot* s = stack.slot;
    if (!s->guarded) return trim(stack, sp);
    if (s->state.load(std::memory_order_acquire) != kActive) return 0;
    char* from = align_down(static_cast<const char*>(sp) - kBelowSp, 16);
    if (from < s->lo) from = s->lo;
    std::size_t len = static_cast<std::size_t>(s->hi - from);
    // A fiber parked deep keeps most of its pages live anyway: trim instead.
    if (len > stack.size() / 4) {
        trim(stack, sp);
        return 0;
    }
    if (s->saved_cap < len) {
        std::free(s->saved);
        s->saved_cap = static_cast<std::uint32_t>(round_up(len, 256));
        s->saved = static_cast<char*>(std::malloc(s->saved_cap));
        if (!s->saved) fatal("out of memory compacting a fiber stack");
    }
    s->state.store(kCompacting, std::memory_order_release);
    copy_raw(s->saved, from, len);
    s->saved_at = from;
    s->saved_len = static_cast<std::uint32_t>(len);
    bool dropped;
    if (s->light) {
        // Guard markers cost per page, so only the live pages get them (they
        // must fault if touched); the garbage below is simply dropped.
        char* live = align_down(from, page_size());
        s->guarded_from = live;
        dropped = ::madvise(live, static_cast<std::size_t>(s->hi - live), MADV_GUARD_INSTALL) == 0;
        if (dropped && live > s->lo + page_size()) {
            // Keep the lowest page: an unguarded stack's canary lives there.
            ::madvise(s->lo + page_size(), static_cast<std::size_t>(live - s->lo) - page_size(), MADV_DONTNEED);
        }
    } else {
        dropped = ::mmap(s->lo, stack.size(), PROT_NONE, MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                         -1, 0) != MAP_FAILED;
    }
    if (!dropped) fatal("cannot compact a fiber stack: %s", std::strerror(errno));
    s->rw = s->light;
    s->state.store(kCompacted, std::memory_order_release);
    return len;
}

void StackPool::make_resident(Stack stack) {
    if (stack.slot && stack.slot->state.load(std::memory_order_acquire) != kActive)
        restore_slot(stack.slot);
}

bool StackPool::restore_range(const void* p, std::size_t n) {
    const char* a = static_cast<const char*>(p);
    const char* end = a + (n ? n : 1);
    bool any = false;
    for (const char* q = a; q < end;) {
        Arena* ar = arena_of(q);
        if (!ar) {
            q = align_down(q, page_size()) + page_size();
            continue;
        }
        std::size_t idx = static_cast<std::size_t>(q - ar->base) / ar->slot_size;
        if (idx < ar->used && restore_slot(&ar->slots[idx])) any = true;
        q = ar->base + (idx + 1) * ar->slot_size;
    }
    return any;
}

bool StackPool::is_compacted(Stack stack) {
    return stack.slot && stack.slot->state.load(std::memory_order_acquire) == kCompacted;
}

std::size_t StackPool::trim(Stack stack, const void* sp) {
    // The lowest page holds an unguarded stack's canary: keep it.
    char* from = stack.lo + page_size();
    char* end = align_down(static_cast<const char*>(sp) - kBelowSp, page_size());
    if (end <= from) return 0;
    std::size_t n = static_cast<std::size_t>(end - from);
    ::madvise(from, n, MADV_DONTNEED);
    return n;
}

bool stack_guards_are_light() noexcept { return g_light_guards.load() == 1; }

std::size_t StackPool::trim_idle(Instant now, std::size_t max) {
    std::int64_t cutoff = now == Instant::max()
                              ? INT64_MAX
                              : std::chrono::duration_cast<std::chrono::nanoseconds>(
                                    (now - kWarmFor).time_since_epoch()).count();
    std::size_t n = 0;
    // The back is the oldest: warm slots are pushed at the front.
    while (!warm_.empty() && n < max && slot_of(warm_.back())->freed_at <= cutoff) {
        make_cold(slot_of(warm_.pop_back()), false);
        ++n;
    }
    return n;
}

Instant StackPool::trim_due() const {
    if (warm_.empty()) return Instant::max();
    return Instant(std::chrono::nanoseconds(slot_of(warm_.back())->freed_at)) + kWarmFor;
}

std::size_t StackPool::trim_thread(Instant now) {
    std::size_t n = 0;
    for (StackPool* p : t_pools.pools) n += p->trim_idle(now, 256);
    return n;
}

Instant StackPool::thread_trim_due() {
    Instant due = Instant::max();
    for (StackPool* p : t_pools.pools) due = std::min(due, p->trim_due());
    return due;
}

StackPoolStats StackPool::stats() const {
    StackPoolStats st;
    st.active = nactive_;
    st.warm = warm_.size();
    st.cold = cold_.size();
    for (Arena* a = arenas_; a; a = a->next)
        for (std::size_t i = 0; i < a->used; ++i)
            if (a->slots[i].state.load(std::memory_order_relaxed) == kCompacted) {
                ++st.compacted;
                st.compacted_bytes += a->slots[i].saved_len;
            }
    return st;
}

}  // namespace tendril
