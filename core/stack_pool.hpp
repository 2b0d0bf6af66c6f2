// Fiber stacks: pooled, lazily touched, guarded, and given back while parked.
//
// Why this is more than mmap per fiber:
//  * Stacks come from big reserved arenas, one slot per stack, so that an
//    address maps to its slot by arithmetic. The SIGSEGV handler needs that to
//    tell "fiber stack overflow in fiber 'x'" (a hit on a slot's guard page)
//    from a plain crash, without taking locks or allocating.
//  * Only touched pages cost memory, but a fiber that ran deep code and then
//    parked for a long time (a comet waiter) would keep those pages forever.
//    compact() copies the live part of a parked stack (usually under 2 KiB)
//    to the heap and drops the whole slot (mmap PROT_NONE), so a long-parked
//    fiber costs its live bytes, not pages. The slot keeps its address range:
//    nothing else ever lives there, so pointers into the stack stay valid, and
//    any access to a compacted stack (another fiber touching a variable the
//    parked fiber owns) faults and the handler restores the stack in place
//    before the access completes. The scheduler restores before resuming.
//  * On Linux 6.13+ guard pages are page-table markers (MADV_GUARD_INSTALL)
//    and an arena is one mapping whatever it holds. Elsewhere a guarded stack
//    costs two memory mappings (guard + stack), and with vm.max_map_count at
//    ~65,530 about 32k guarded stacks fit in a process. Unguarded stacks
//    (StackOptions::guard = false) share one mapping per arena everywhere;
//    they are trimmed (pages below the stack pointer dropped) instead of
//    compacted, and their overflow is caught only by a canary check when the
//    fiber parks.
#pragma once

#include "tendril/core/intrusive_list.hpp"
#include "tendril/core/time.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace tendril {

struct StackOptions {
    // Usable bytes, rounded up to whole pages. Virtual size: only the pages a
    // fiber touches are resident.
    std::size_t size = 256 * 1024;
    bool guard = true;
};

struct StackSlot;  // the slot's record in the arena registry

struct Stack {
    char* lo = nullptr;  // lowest usable byte (the guard page is just below)
    char* hi = nullptr;  // one past the highest byte; stacks grow down from hi
    StackSlot* slot = nullptr;
    std::size_t size() const { return static_cast<std::size_t>(hi - lo); }
    explicit operator bool() const { return lo != nullptr; }
};

struct StackPoolStats {
    std::size_t active = 0;     // handed out
    std::size_t warm = 0;       // free, pages kept
    std::size_t cold = 0;       // free, pages dropped
    std::size_t compacted = 0;  // handed out but compacted
    std::size_t compacted_bytes = 0;
};

// A per-thread pool of stacks of one size and guard kind.
class StackPool {
public:
    // The calling thread's pool for these options (created on first use).
    static StackPool& for_thread(const StackOptions& options);

    // owner_name must stay valid while the stack is in use: the overflow
    // report reads it from the signal handler.
    Stack acquire(const char* owner_name);
    void release(Stack stack);

    const StackOptions& options() const { return options_; }
    StackPoolStats stats() const;

    // Free stacks keep their pages ("warm") for kWarmFor, so that a server
    // churning through connections reuses them without syscalls or page
    // faults; after that they are trimmed (oldest first, at most max now).
    static constexpr Duration kWarmFor = std::chrono::seconds(1);
    static constexpr std::size_t kMaxWarm = 65536;
    std::size_t trim_idle(Instant now, std::size_t max);
    Instant trim_due() const;
    // The calling thread's pools: trim what is due; when the next trim is due.
    static std::size_t trim_thread(Instant now);
    static Instant thread_trim_due();

    // Reclaim a parked stack whose saved stack pointer is sp. Guarded stacks
    // are compacted (returns the live bytes kept); unguarded ones are trimmed
    // below sp (returns 0). Must not be called for the running fiber.
    static std::size_t reclaim(Stack stack, const void* sp);
    // Give a compacted stack its pages and contents back (no-op otherwise).
    static void make_resident(Stack stack);
    static bool is_compacted(Stack stack);
    // Restore every compacted stack overlapping [p, p + n). A syscall given a
    // buffer on a compacted stack fails with EFAULT instead of faulting; the
    // I/O layer calls this and retries. True if anything was restored.
    static bool restore_range(const void* p, std::size_t n);
    // Drop the pages below sp without compacting (the "trim" policy).
    static std::size_t trim(Stack stack, const void* sp);

    // Install the process-wide SIGSEGV handler and this thread's alternate
    // signal stack (both idempotent). Called by the scheduler.
    static void install_fault_handler();

    ~StackPool();
    StackPool(const StackPool&) = delete;
    StackPool& operator=(const StackPool&) = delete;

    struct Arena;  // one reserved region of slots (internal)
    // A free slot's link in the warm or the cold list (never both). The
    // lists need a complete type here, and the rest of the slot record is
    // internal, so StackSlot derives from this.
    struct FreeLink {
        ListHook<FreeLink> free_hook;
    };

private:
    explicit StackPool(const StackOptions& options);
    void grow();
    StackOptions options_;
    void make_cold(StackSlot* s, bool pages_gone);
    using FreeList = IntrusiveList<FreeLink, &FreeLink::free_hook>;
    Arena* arenas_ = nullptr;
    FreeList warm_;  // free, resident pages, newest first (the back is the oldest)
    FreeList cold_;  // free, pages dropped
    std::size_t nactive_ = 0;
};

// Bytes per page, cached.
std::size_t page_size() noexcept;

// Whether guard pages are page-table markers here (known after the first
// guarded stack is handed out).
bool stack_guards_are_light() noexcept;

}  // namespace tendril
