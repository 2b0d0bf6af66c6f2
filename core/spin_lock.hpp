// SpinLock: the lock inside channels and the sync primitives.
//
// Their critical sections are a few dozen instructions (link a waiter, move a
// value), never a syscall or a wait, so a lock that spins briefly beats a
// futex-based mutex, and it never parks the OS thread that runs every fiber
// of a scheduler. Under contention it backs off to sched_yield(). It
// satisfies Lockable (std::lock_guard, std::unique_lock).
#pragma once

#include <atomic>

#include <sched.h>

namespace tendril {

class SpinLock {
public:
    SpinLock() = default;
    SpinLock(const SpinLock&) = delete;
    SpinLock& operator=(const SpinLock&) = delete;

    void lock() noexcept {
        for (int spins = 0;; ++spins) {
            if (!locked_.exchange(true, std::memory_order_acquire)) return;
            while (locked_.load(std::memory_order_relaxed)) {
                if (spins++ < 64) pause();
                else sched_yield();
            }
        }
    }
    bool try_lock() noexcept {
        return !locked_.load(std::memory_order_relaxed) && !locked_.exchange(true, std::memory_order_acquire);
    }
    void unlock() noexcept { locked_.store(false, std::memory_order_release); }

private:
    static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
    }
    std::atomic<bool> locked_{false};
};

}  // namespace tendril
