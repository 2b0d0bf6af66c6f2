// micro_sched: what the scheduler's basic operations cost, in ns per operation.
//
//   fiber switches (yield ping-pong) against a bare Boost.Context fcontext
//   round trip in the same binary; spawn + join with pooled stacks; channel
//   ping-pong, buffered throughput and select; timer heap insert + cancel;
//   and the resident memory of 10,000 parked fibers under each StackReclaim
//   mode, with what compacting and restoring their stacks costs.
//
// Every figure is the median of several rounds, with the fastest and slowest
// round beside it. Nothing here asserts on time: the figures are for reading
// and for comparing runs. The memory section runs each reclaim mode in a
// forked child, so that no mode sees the stacks or heap another one left.
#include "../apps/common/app.hpp"
#include "processes.hpp"

#include <tendril/core/stack_pool.hpp>
#include <tendril/sched/channel.hpp>
#include <tendril/sched/event.hpp>
#include <tendril/sched/scheduler.hpp>
#include <tendril/sched/select.hpp>
#include <tendril/sched/timer_heap.hpp>
#include <tendril/sched/wait_group.hpp>

#include <boost/context/detail/fcontext.hpp>

#include <CLI/CLI.hpp>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <string>
#include <vector>

using namespace tendril;

namespace {

// --- measuring ---------------------------------------------------------------------

struct Stat {
    double med = 0, lo = 0, hi = 0;
    bool valid = false;
};

Stat summarize(std::vector<double> v) {
    Stat s;
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    std::size_t n = v.size();
    s.med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    s.lo = v.front();
    s.hi = v.back();
    s.valid = true;
    return s;
}

double ns_since(Instant t0) {
    return std::chrono::duration<double, std::nano>(Clock::now() - t0).count();
}

// One untimed warm-up round, then `rounds` timed ones; `once` returns ns per op.
template <class F>
Stat measure(int rounds, F&& once) {
    (void)once();
    std::vector<double> v;
    for (int r = 0; r < rounds; ++r) v.push_back(once());
    return summarize(std::move(v));
}

struct Row {
    std::string section;  // printed as a heading when it changes
    std::string name;
    Stat ns;              // ns per operation
    std::string note;
};

std::vector<Row> g_rows;

// Progress on a terminal only (one line, overwritten); the report goes to stdout.
void progress(const std::string& what) {
    static const bool tty = ::isatty(2);
    if (!tty) return;
    std::fprintf(stderr, "\r\033[K  %s", what.c_str());
    if (what.empty()) std::fprintf(stderr, "\r");
    std::fflush(stderr);
}

void add(const std::string& section, const std::string& name, Stat s, std::string note = {}) {
    g_rows.push_back({section, name, s, std::move(note)});
    progress(name + ": " + std::to_string(s.med) + " ns");
}

std::string fmt(const char* f, double a) {
    char b[128];
    std::snprintf(b, sizeof b, f, a);
    return b;
}

// Deep code: a frame of N bytes, every page of it written.
template <std::size_t N>
__attribute__((noinline)) int touch_stack() {
    volatile char buf[N];
    for (std::size_t i = 0; i < N; i += 256) buf[i] = static_cast<char>(i);
    return buf[0] + buf[N / 2];
}

// --- a bare fcontext round trip, for reference --------------------------------------

namespace bc = boost::context::detail;

void fc_entry(bc::transfer_t t) {
    for (;;) t = bc::jump_fcontext(t.fctx, nullptr);
}

Stat bare_fcontext(int rounds, long n) {
    constexpr std::size_t kSize = 64 * 1024;
    void* mem = std::malloc(kSize);
    bc::fcontext_t ctx = bc::make_fcontext(static_cast<char*>(mem) + kSize, kSize, fc_entry);
    bc::transfer_t t = bc::jump_fcontext(ctx, nullptr);  // start it: it jumps straight back
    Stat s = measure(rounds, [&] {
        Instant t0 = Clock::now();
        for (long i = 0; i < n; ++i) t = bc::jump_fcontext(t.fctx, nullptr);  // there and back
        return ns_since(t0) / static_cast<double>(n);
    });
    std::free(mem);  // the context is left suspended for good: nothing to unwind
    return s;
}

// The scheduler reads the clock twice per loop round, Deadline::after() twice.
Stat clock_read(int rounds, long n) {
    return measure(rounds, [&] {
        std::int64_t sum = 0;
        Instant t0 = Clock::now();
        for (long i = 0; i < n; ++i) sum += Clock::now().time_since_epoch().count();
        double ns = ns_since(t0) / static_cast<double>(n);
        asm volatile("" : : "r"(sum));
        return ns;
    });
}

// --- the benchmarks, run inside a fiber ------------------------------------------------

struct Sizes {
    long yields = 500'000;
    long spawn = 100'000;
    long spawn_batch = 1'000;
    long pingpong = 200'000;
    long buffered = 1'000'000;
    long select_ready = 1'000'000;
    long timers = 1'000'000;
    long pending_timers = 10'000;
};

// Round trips of A -> B -> A by yield(); returns ns per round trip.
double yield_pingpong(long n) {
    auto body = [n] {
        for (long i = 0; i < n; ++i) yield();
    };
    Instant t0 = Clock::now();
    auto a = go(body, FiberOptions{"ping"});
    auto b = go(body, FiberOptions{"pong"});
    (void)a.join();
    (void)b.join();
    return ns_since(t0) / static_cast<double>(n);
}

template <class Body>
double spawn_join(long total, long batch, Body body) {
    std::vector<FiberHandle> hs;
    hs.reserve(static_cast<std::size_t>(batch));
    Instant t0 = Clock::now();
    for (long done = 0; done < total; done += batch) {
        for (long i = 0; i < batch; ++i) hs.push_back(go(body));
        for (auto& h : hs) (void)h.join();
        hs.clear();
    }
    return ns_since(t0) / static_cast<double>(total);
}

enum class Deadlines { none, after, loop_clock };

double chan_pingpong(long n, Deadlines deadlines = Deadlines::none) {
    Channel<long> ping(0), pong(0);
    Scheduler* s = Scheduler::current();
    auto dl = [deadlines, s] {
        switch (deadlines) {
        case Deadlines::after: return Deadline::after(std::chrono::seconds(30));
        case Deadlines::loop_clock: return s->deadline_after(std::chrono::seconds(30));
        default: return Deadline::never();
        }
    };
    Instant t0 = Clock::now();
    auto b = go([&] {
        long v;
        for (long i = 0; i < n; ++i) {
            if (ping.recv(v, dl()) != Status::ok) return;
            (void)pong.send(v, dl());
        }
    }, FiberOptions{"pong"});
    auto a = go([&] {
        long v;
        for (long i = 0; i < n; ++i) {
            (void)ping.send(i, dl());
            if (pong.recv(v, dl()) != Status::ok) return;
        }
    }, FiberOptions{"ping"});
    (void)a.join();
    (void)b.join();
    return ns_since(t0) / static_cast<double>(n);
}

double chan_buffered(long n) {
    Channel<long> ch(1024);
    long sum = 0;
    Instant t0 = Clock::now();
    auto c = go([&] {
        long v;
        while (ch.recv(v) == Status::ok) sum += v;
    }, FiberOptions{"consumer"});
    auto p = go([&] {
        for (long i = 0; i < n; ++i) (void)ch.send(i);
        ch.close();
    }, FiberOptions{"producer"});
    (void)p.join();
    (void)c.join();
    double ns = ns_since(t0) / static_cast<double>(n);
    if (sum != n * (n - 1) / 2) std::fprintf(stderr, "micro_sched: buffered channel lost items\n");
    return ns;
}

// A sends on ch1 or ch2 (alternately); B selects over both and answers on back.
double select_pingpong(long n) {
    Channel<long> ch1(0), ch2(0), back(0);
    Instant t0 = Clock::now();
    auto b = go([&] {
        for (;;) {
            long v1 = 0, v2 = 0;
            Selected r = select(ch1.on_recv(v1), ch2.on_recv(v2));
            if (r.status != Status::ok) return;
            (void)back.send(r.index == 0 ? v1 : v2);
        }
    }, FiberOptions{"selector"});
    auto a = go([&] {
        long v;
        for (long i = 0; i < n; ++i) {
            (void)(i & 1 ? ch1 : ch2).send(i);
            (void)back.recv(v);
        }
        ch1.close();
    }, FiberOptions{"sender"});
    (void)a.join();
    (void)b.join();
    return ns_since(t0) / static_cast<double>(n);
}

// In one fiber: try_send on one of two buffered channels, then select over both
// (a case is ready at once: no park). `with_select` false: try_recv instead.
double select_ready(long n, bool with_select) {
    Channel<long> ch1(16), ch2(16);
    long sum = 0;
    Instant t0 = Clock::now();
    for (long i = 0; i < n; ++i) {
        (void)(i & 1 ? ch1 : ch2).try_send(i);
        long v1 = 0, v2 = 0;
        if (with_select) {
            Selected r = select(ch1.on_recv(v1), ch2.on_recv(v2));
            sum += r.index == 0 ? v1 : v2;
        } else {
            (void)(i & 1 ? ch1 : ch2).try_recv(v1);
            sum += v1;
        }
    }
    double ns = ns_since(t0) / static_cast<double>(n);
    if (sum != n * (n - 1) / 2) std::fprintf(stderr, "micro_sched: select lost items\n");
    return ns;
}

double g_sleep_switches = 0;  // scheduler switches per sleep_for(0), last round

double sleep_zero(long n) {
    Scheduler* s = Scheduler::current();
    std::uint64_t sw0 = s->counters().switches;
    Instant t0 = Clock::now();
    for (long i = 0; i < n; ++i) (void)sleep_for(Duration::zero());
    double ns = ns_since(t0) / static_cast<double>(n);
    g_sleep_switches = static_cast<double>(s->counters().switches - sw0) / static_cast<double>(n);
    return ns;
}

// insert + cancel against a heap already holding `pending` timers, 1..11 s out.
// earliest: the new timer is due before every pending one (sifts to the root).
double heap_insert_cancel(long n, long pending, bool earliest) {
    TimerHeap heap;
    std::vector<TimerNode> nodes(static_cast<std::size_t>(pending));
    std::mt19937_64 rng(42);
    Instant base = Clock::now() + std::chrono::seconds(1);
    for (auto& nd : nodes) heap.insert(&nd, base + std::chrono::microseconds(rng() % 10'000'000));
    constexpr std::size_t kOffsets = 4096;
    std::vector<Instant> when(kOffsets);
    for (auto& w : when) w = earliest ? base - std::chrono::microseconds(1 + rng() % 1000)
                                      : base + std::chrono::microseconds(rng() % 10'000'000);
    TimerNode t;
    Instant t0 = Clock::now();
    for (long i = 0; i < n; ++i) {
        heap.insert(&t, when[static_cast<std::size_t>(i) & (kOffsets - 1)]);
        heap.cancel(&t);
    }
    double ns = ns_since(t0) / static_cast<double>(n);
    for (auto& nd : nodes) heap.cancel(&nd);
    return ns;
}

// Far-future timers in the scheduler's own heap, so fiber deadlines share it.
struct PendingTimers {
    std::vector<TimerNode> nodes;
    explicit PendingTimers(long n) : nodes(static_cast<std::size_t>(n)) {
        Instant base = Clock::now() + std::chrono::hours(1);
        std::mt19937_64 rng(7);
        for (auto& nd : nodes) {
            nd.fire = [](TimerNode*) {};
            Scheduler::current()->timers().insert(&nd, base + std::chrono::milliseconds(rng() % 3'600'000));
        }
    }
    ~PendingTimers() {
        for (auto& nd : nodes) Scheduler::current()->timers().cancel(&nd);
    }
};

void run_cpu_benchmarks(int rounds, const Sizes& z) {
    const std::string sw = "fiber switch";
    Stat fc = bare_fcontext(rounds, 10'000'000);
    add(sw, "bare fcontext round trip (jump there and back)", fc, "Boost.Context alone");
    Stat clk = clock_read(rounds, 2'000'000);
    add(sw, "  reference: Clock::now() (steady_clock)", clk, "the loop reads it twice per round");

    Stat yrt{}, spawn{}, spawn16{};
    run([&] {
        yrt = measure(rounds, [&] { return yield_pingpong(z.yields); });
        Stat ysw{yrt.med / 2, yrt.lo / 2, yrt.hi / 2, true};
        add(sw, "yield ping-pong, per round trip A->B->A", yrt, "= 3 fcontext jumps: A->B direct, B->loop->A");
        add(sw, "yield ping-pong, per switch A->B", ysw,
            fmt("%.1fx a bare fcontext round trip", fc.med > 0 ? ysw.med / fc.med : 0));

        const std::string sp = "spawn + join (pooled stacks, batches of " + std::to_string(z.spawn_batch) + ")";
        spawn = measure(rounds, [&] { return spawn_join(z.spawn, z.spawn_batch, [] {}); });
        add(sp, "spawn + join, empty fiber", spawn, fmt("%.2f M fibers/s", spawn.med > 0 ? 1e3 / spawn.med : 0));
        spawn16 = measure(rounds, [&] {
            return spawn_join(z.spawn, z.spawn_batch, [] { (void)touch_stack<16 * 1024>(); });
        });
        add(sp, "spawn + join, fiber touching 16 KiB of stack", spawn16,
            fmt("%+.0f ns for the 16 KiB", spawn16.med - spawn.med));

        const std::string ch = "channels";
        Stat pp = measure(rounds, [&] { return chan_pingpong(z.pingpong); });
        add(ch, "unbuffered ping-pong, per round trip", pp, "send + recv each way, 2 parks");
        Stat buf = measure(rounds, [&] { return chan_buffered(z.buffered); });
        add(ch, "buffered (1024) 1 producer -> 1 consumer, per item", buf,
            fmt("%.1f M items/s", buf.med > 0 ? 1e3 / buf.med : 0));

        const std::string se = "select over 2 channels";
        Stat sel = measure(rounds, [&] { return select_pingpong(z.pingpong); });
        add(se, "select ping-pong (receiver parks in select), round trip", sel,
            fmt("%+.0f ns over the plain ping-pong", sel.med - pp.med));
        Stat trs = measure(rounds, [&] { return select_ready(z.select_ready, false); });
        add(se, "  baseline: try_send + try_recv, one fiber", trs);
        Stat srd = measure(rounds, [&] { return select_ready(z.select_ready, true); });
        add(se, "try_send + select (a case ready, no park)", srd,
            fmt("select itself ~%.0f ns", srd.med - trs.med));

        const std::string ti = "timers (heap and deadline rows: " + std::to_string(z.pending_timers) + " timers pending)";
        Stat sz = measure(rounds, [&] { return sleep_zero(z.timers / 4); });
        add(ti, "sleep_for(0)", sz,
            g_sleep_switches >= 0.5 ? fmt("parks: %.2f switches per call", g_sleep_switches)
                                    : std::string("returns at once, no switch"));
        Stat hr = measure(rounds, [&] { return heap_insert_cancel(z.timers, z.pending_timers, false); });
        add(ti, "TimerHeap insert + cancel, random due time", hr);
        Stat he = measure(rounds, [&] { return heap_insert_cancel(z.timers, z.pending_timers, true); });
        add(ti, "TimerHeap insert + cancel, due before all others", he, "sifts to the root");
        Stat ppd, ppl;
        {
            PendingTimers pending(z.pending_timers);
            ppd = measure(rounds, [&] { return chan_pingpong(z.pingpong, Deadlines::after); });
            ppl = measure(rounds, [&] { return chan_pingpong(z.pingpong, Deadlines::loop_clock); });
        }
        add(ti, "unbuffered ping-pong, Deadline::after(30s) on every op", ppd,
            fmt("%+.0f ns over no deadline (4 ops per round trip)", ppd.med - pp.med));
        add(ti, "unbuffered ping-pong, deadline_after(30s) (loop clock)", ppl,
            fmt("%+.0f ns over no deadline", ppl.med - pp.med));
    }, SchedulerOptions{});
}

// --- resident memory of parked fibers --------------------------------------------------

const char* mode_name(StackReclaim m) {
    switch (m) {
    case StackReclaim::none: return "none";
    case StackReclaim::trim: return "trim";
    case StackReclaim::compact: return "compact";
    }
    return "?";
}

long rss_bytes() {
    std::ifstream f("/proc/self/statm");
    long size = 0, resident = 0;
    f >> size >> resident;
    return resident * static_cast<long>(::sysconf(_SC_PAGESIZE));
}

struct ParkResult {
    bool ok = false;
    long n = 0;
    long rss_before = 0, rss_after = 0;
    double spawn_park_ns = 0;       // spawn, run 24 KiB deep, park: per fiber
    std::uint64_t reclaimed = 0;    // by the time RSS was read
    std::size_t compacted = 0, compacted_bytes = 0;
    double wake_ns = 0;             // wake all, each runs and parks again: per fiber
    std::uint64_t restored = 0;
    double reclaim_ns = 0;          // the reclaim pass alone, per fiber (round 2)
    std::uint64_t reclaim_count = 0;
    double exit_ns = 0;             // release all, join: per fiber
    bool light_guards = false;
};

// Runs in a fresh child process.
ParkResult park_many(StackReclaim mode, long n) {
    ParkResult r;
    r.n = n;
    SchedulerOptions so;
    so.reclaim = mode;
    so.reclaim_after = std::chrono::milliseconds(1);
    Scheduler s(so);
    s.go([&] {
        // Round 1: the resident memory, and waking them all.
        r.rss_before = rss_bytes();
        Event ev, ev2;
        WaitGroup parked, woken;
        std::vector<FiberHandle> hs;
        hs.reserve(static_cast<std::size_t>(n));
        parked.add(n);
        Instant t0 = Clock::now();
        for (long i = 0; i < n; ++i)
            hs.push_back(go([&] {
                (void)touch_stack<24 * 1024>();
                parked.done();
                (void)ev.wait();
                woken.done();
                (void)ev2.wait();
            }, FiberOptions{"parked"}));
        (void)parked.wait();
        r.spawn_park_ns = ns_since(t0) / static_cast<double>(n);
        (void)sleep_for(std::chrono::milliseconds(50));
        r.rss_after = rss_bytes();
        r.reclaimed = s.counters().reclaimed;
        StackPoolStats st = StackPool::for_thread(s.options().stack).stats();
        r.compacted = st.compacted;
        r.compacted_bytes = st.compacted_bytes;
        r.light_guards = stack_guards_are_light();

        // No reclaiming while they are woken and park again: that is round 2.
        s.set_reclaim(mode, std::chrono::hours(1));
        std::uint64_t restored0 = s.counters().restored;
        woken.add(n);
        t0 = Clock::now();
        ev.set();
        (void)woken.wait();
        r.wake_ns = ns_since(t0) / static_cast<double>(n);
        r.restored = s.counters().restored - restored0;
        t0 = Clock::now();
        ev2.set();
        for (auto& h : hs) (void)h.join();
        r.exit_ns = ns_since(t0) / static_cast<double>(n);
        hs.clear();

        // Round 2: the reclaim pass alone, over n fibers parked with 24 KiB
        // of touched stack (listed for reclaim, but not due until we say so).
        if (mode != StackReclaim::none) {
            Event ev3;
            WaitGroup parked2;
            parked2.add(n);
            for (long i = 0; i < n; ++i)
                hs.push_back(go([&] {
                    (void)touch_stack<24 * 1024>();
                    parked2.done();
                    (void)ev3.wait();
                }, FiberOptions{"parked"}));
            (void)parked2.wait();
            std::uint64_t rec0 = s.counters().reclaimed;
            Instant give_up = Clock::now() + std::chrono::seconds(5);
            t0 = Clock::now();
            s.set_reclaim(mode, Duration::zero());
            // The loop reclaims after its next poll (within ~1 ms of spinning).
            while (s.counters().reclaimed - rec0 < static_cast<std::uint64_t>(n) && Clock::now() < give_up) yield();
            r.reclaim_ns = ns_since(t0) / static_cast<double>(n);
            r.reclaim_count = s.counters().reclaimed - rec0;
            s.set_reclaim(mode, std::chrono::hours(1));
            ev3.set();
            for (auto& h : hs) (void)h.join();
        }
        r.ok = true;
    }, FiberOptions{"main"});
    s.run();
    return r;
}

ParkResult park_in_child(StackReclaim mode, long n) {
    int p[2];
    ParkResult r;
    if (::pipe(p) != 0) return r;
    std::fflush(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
        ::close(p[0]);
        ParkResult got = park_many(mode, n);
        ssize_t w = ::write(p[1], &got, sizeof got);
        (void)w;
        ::_exit(0);
    }
    ::close(p[1]);
    ssize_t got = ::read(p[0], &r, sizeof r);
    ::close(p[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (got != static_cast<ssize_t>(sizeof r)) r = ParkResult{};
    return r;
}

// --- the machine ---------------------------------------------------------------------

// Busy CPU-seconds of the whole machine so far (/proc/stat), and of this
// process with its waited-for children, to tell whether the figures were
// taken on a busy machine.
double machine_busy() {
    bench::MachineCpu m = bench::machine_cpu();
    return m.busy + m.softirq;
}

double own_cpu() { return bench::rusage_cpu(RUSAGE_SELF).total() + bench::rusage_cpu(RUSAGE_CHILDREN).total(); }

// --- the report ----------------------------------------------------------------------

void print_rows(int rounds) {
    std::printf("\n tendril micro benchmarks: scheduler   (%s poller, %ld CPUs, median of %d rounds [fastest .. slowest])\n",
                Scheduler::poller_backend(), ::sysconf(_SC_NPROCESSORS_ONLN), rounds);
    std::printf(" %s\n", std::string(104, '-').c_str());
    std::printf(" %-56s %9s  %-21s %s\n", "operation", "ns/op", "spread", "note");
    std::string section;
    for (const Row& r : g_rows) {
        if (r.section != section) {
            section = r.section;
            std::printf(" %s\n", section.c_str());
        }
        char spread[64];
        std::snprintf(spread, sizeof spread, "[%.1f .. %.1f]", r.ns.lo, r.ns.hi);
        std::printf("   %-54s %9.1f  %-21s %s\n", r.name.c_str(), r.ns.med, spread, r.note.c_str());
    }
}

void print_parked(const std::vector<std::pair<StackReclaim, ParkResult>>& res, long n) {
    std::printf("\n %ld parked fibers, each ran 24 KiB deep, then parked on an Event   (reclaim_after = 1 ms, RSS after "
                "50 ms)\n", n);
    std::printf(" %s\n", std::string(104, '-').c_str());
    std::printf(" %-8s %10s %10s %12s %10s %11s %12s %11s %10s\n", "reclaim", "RSS before", "RSS after", "bytes/fiber",
                "reclaimed", "kept/fiber", "reclaim/fib", "wake/fiber", "restored");
    double wake_none = 0;
    for (auto& [m, r] : res)
        if (m == StackReclaim::none && r.ok) wake_none = r.wake_ns;
    for (auto& [m, r] : res) {
        if (!r.ok) {
            std::printf(" %-8s (the child failed)\n", mode_name(m));
            continue;
        }
        double per = static_cast<double>(r.rss_after - r.rss_before) / static_cast<double>(r.n);
        char kept[32] = "-", rec[32] = "-";
        if (r.compacted) std::snprintf(kept, sizeof kept, "%.0f B", double(r.compacted_bytes) / double(r.compacted));
        if (m != StackReclaim::none) std::snprintf(rec, sizeof rec, "%.0f ns", r.reclaim_ns);
        std::printf(" %-8s %8.1f M %8.1f M %12.0f %10llu %11s %12s %8.0f ns %10llu\n", mode_name(m),
                    r.rss_before / 1048576.0, r.rss_after / 1048576.0, per,
                    static_cast<unsigned long long>(r.reclaimed), kept, rec, r.wake_ns,
                    static_cast<unsigned long long>(r.restored));
    }
    std::printf("\n   bytes/fiber   (RSS after - RSS before) / N: stack pages, the fiber record, what compaction kept\n"
                "   kept/fiber    the live stack bytes a compacted fiber keeps on the heap\n"
                "   reclaim/fib   the reclaim pass alone (trim: madvise; compact: copy out + guard the pages), per fiber\n"
                "   wake/fiber    Event::set() to all N woken and parked again, per fiber (compact: includes the restore)\n");
    for (auto& [m, r] : res) {
        if (!r.ok || m == StackReclaim::none) continue;
        std::printf("   %-8s spawn+run+park %.0f ns/fiber, wake %+.0f ns/fiber vs none, exit %.0f ns/fiber\n",
                    mode_name(m), r.spawn_park_ns, r.wake_ns - wake_none, r.exit_ns);
    }
    for (auto& [m, r] : res)
        if (r.ok && m == StackReclaim::none)
            std::printf("   %-8s spawn+run+park %.0f ns/fiber, exit %.0f ns/fiber\n", "none", r.spawn_park_ns, r.exit_ns);
    bool light = false;
    for (auto& [m, r] : res) light |= r.light_guards;
    std::printf("   guard pages: %s\n", light ? "page-table markers (MADV_GUARD_INSTALL)" : "separate mappings (mprotect)");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"micro_sched: ns per scheduler operation (switch, spawn, channels, select, timers) and the memory "
                 "of parked fibers under each stack reclaim mode", "micro_sched"};
    int rounds = 7;
    long parked = 10000;
    bool skip_memory = false, only_memory = false;
    double scale = 1.0;
    app.add_option("--rounds", rounds, "timed rounds per benchmark (plus one warm-up)")
        ->check(CLI::Range(1, 101))
        ->capture_default_str();
    app.add_option("--parked", parked, "fibers parked in the memory section")
        ->check(CLI::Range(100L, 200000L))
        ->capture_default_str();
    app.add_option("--scale", scale, "multiply the operation counts (shorter or longer rounds)")
        ->check(CLI::Range(0.001, 100.0))
        ->capture_default_str();
    app.add_flag("--skip-memory", skip_memory, "skip the parked-fiber memory section");
    app.add_flag("--only-memory", only_memory, "only the parked-fiber memory section");
    tendril::apps::parse_or_exit(app, argc, argv);
    if (const char* v = std::getenv("TENDRIL_STACK_RECLAIM")) {
        std::fprintf(stderr, "micro_sched: ignoring TENDRIL_STACK_RECLAIM=%s (each mode is measured in turn)\n", v);
        ::unsetenv("TENDRIL_STACK_RECLAIM");
    }
    Instant t_start = Clock::now();
    double busy0 = machine_busy(), own0 = own_cpu();

    // Memory first, while this process has no stacks or heap the children
    // would inherit (shared pages would hide the ones they touch).
    std::vector<std::pair<StackReclaim, ParkResult>> parked_res;
    if (!skip_memory) {
        for (StackReclaim m : {StackReclaim::none, StackReclaim::trim, StackReclaim::compact}) {
            progress("parking " + std::to_string(parked) + " fibers, reclaim " + mode_name(m) + " ...");
            parked_res.emplace_back(m, park_in_child(m, parked));
        }
    }

    if (!only_memory) {
        Sizes z;
        auto sc = [scale](long v) { return std::max<long>(1, static_cast<long>(static_cast<double>(v) * scale)); };
        z.yields = sc(z.yields);
        z.spawn = std::max(z.spawn_batch, sc(z.spawn) / z.spawn_batch * z.spawn_batch);
        z.pingpong = sc(z.pingpong);
        z.buffered = sc(z.buffered);
        z.select_ready = sc(z.select_ready);
        z.timers = sc(z.timers);
        run_cpu_benchmarks(rounds, z);
        progress("");
        print_rows(rounds);
    }
    progress("");
    if (!skip_memory) print_parked(parked_res, parked);

    std::printf("\n reference points: a bare fcontext round trip is ~8 ns on this kind of machine; Go's unbuffered "
                "channel\n round trip between two goroutines is a few hundred ns.\n");
    double wall = std::chrono::duration<double>(Clock::now() - t_start).count();
    double other = std::max(0.0, machine_busy() - busy0 - (own_cpu() - own0));
    std::printf(" %.1f s in all; meanwhile the rest of the machine was busy %.1f CPU-s (%.2f of %ld CPUs on average)%s\n",
                wall, other, wall > 0 ? other / wall : 0.0, ::sysconf(_SC_NPROCESSORS_ONLN),
                wall > 0 && other / wall > 0.25 ? ": a busy machine, expect noise" : "");
    return 0;
}
