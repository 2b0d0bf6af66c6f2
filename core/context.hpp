// Execution contexts: Boost.Context's fcontext, plus the announcements that
// AddressSanitizer and Valgrind need when a thread changes stacks.
//
// fcontext is the cheapest portable switch there is (two register saves and a
// jump, ~10 ns a round trip); everything else about fibers (scheduling,
// stacks, names) lives in sched/. Without the sanitizer calls ASan mistakes a
// switch for a stack overflow and reports garbage, so every switch in tendril
// goes through switch_context() below.
#pragma once

#include "tendril/core/sanitizers.hpp"

#include <boost/context/detail/fcontext.hpp>

#include <cstddef>

#ifdef TENDRIL_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef TENDRIL_TSAN
#include <sanitizer/tsan_interface.h>
#endif

namespace tendril {

using ContextHandle = boost::context::detail::fcontext_t;
using Transfer = boost::context::detail::transfer_t;
using ContextEntry = void (*)(Transfer);

// The stack an execution context runs on: [lo, lo + size).
struct StackBounds {
    const void* lo = nullptr;
    std::size_t size = 0;
};

inline ContextHandle make_context(void* stack_top, std::size_t size, ContextEntry entry) {
    return boost::context::detail::make_fcontext(stack_top, size, entry);
}

// ThreadSanitizer keeps its own record per context (its shadow call stack
// and clocks); without one per fiber it reports races between a fiber and
// itself. Null, and free, in other builds.
inline void* sanitizer_context_create() {
#ifdef TENDRIL_TSAN
    return __tsan_create_fiber(0);
#else
    return nullptr;
#endif
}
inline void sanitizer_context_destroy(void* c) {
#ifdef TENDRIL_TSAN
    if (c) __tsan_destroy_fiber(c);
#else
    (void)c;
#endif
}
// The record of the context running now (a thread's own).
inline void* sanitizer_context_current() {
#ifdef TENDRIL_TSAN
    return __tsan_get_current_fiber();
#else
    return nullptr;
#endif
}

// Boost's jump_fcontext, called so that the CPU's return-address predictor
// stays in step. A `call` pushes a prediction that jump_fcontext never pops
// (it leaves with an indirect jmp), so after every switch each `ret` up the
// resumed context's frames was predicted from the frames of the context it
// came from -- wrong by one slot even when both were parked at the same call
// site, as a server's fibers are. Pushing the return address by hand
// keeps the predictor's stack as it was: a fiber that resumes where the
// previous one parked returns through the very predictions that one left.
// jump_fcontext restores the callee-saved registers of the context it
// resumes; the rest of the caller-saved set is clobbered here.
//
// The push writes below the stack pointer, where a leaf function may keep
// data (the red zone). Stepping over it would leave 128 bytes more on every
// parked fiber's stack (+170 B per parked comet connection, measured), so
// the translation unit must be built with -mno-red-zone and say so with
// TENDRIL_NO_RED_ZONE (the Makefile does both for sched/scheduler.cpp, the
// one caller); anywhere else this is the plain call, as it is with
// -DTENDRIL_PLAIN_JUMP (to measure the difference), under a CET shadow stack
// (the pushed address has no shadow entry) and with APX (r16-r31 would need
// clobbering too).
inline Transfer jump_context(ContextHandle to, void* data) {
#if defined(__x86_64__) && defined(__ELF__) && (defined(__GNUC__) || defined(__clang__)) && \
    defined(TENDRIL_NO_RED_ZONE) && !defined(TENDRIL_PLAIN_JUMP) && !(defined(__CET__) && (__CET__ & 2)) && \
    !defined(__APX_F__)
    void* fctx;
    void* sent;
    asm volatile(
        "lea 1f(%%rip), %%rax\n\t"
        "push %%rax\n\t"
        "jmp jump_fcontext@PLT\n"
        "1:\n\t"
        : "=a"(fctx), "=d"(sent), "+D"(to), "+S"(data)
        : "X"(&boost::context::detail::jump_fcontext)  // named outside the string too, for the linker
        : "rcx", "r8", "r9", "r10", "r11", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
          "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "st",
          "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)"
#ifdef __AVX512F__
          , "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",
          "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"
#endif
    );
    return Transfer{fctx, sent};
#else
    return boost::context::detail::jump_fcontext(to, data);
#endif
}

// Switch to `to`, which runs on `to_stack` (`to_sanitizer_context`: its
// ThreadSanitizer record). `fake_stack` is ASan's slot for the context being
// left; pass nullptr when that context is finished for good so ASan frees its
// fake stack. Returns what the context that later resumes us sent.
inline Transfer switch_context(ContextHandle to, void* data, void** fake_stack,
                               StackBounds to_stack, void* to_sanitizer_context = nullptr) {
#ifdef TENDRIL_ASAN
    __sanitizer_start_switch_fiber(fake_stack, to_stack.lo, to_stack.size);
#else
    (void)fake_stack;
    (void)to_stack;
#endif
#ifdef TENDRIL_TSAN
    __tsan_switch_to_fiber(to_sanitizer_context, 0);
#else
    (void)to_sanitizer_context;
#endif
    Transfer t = jump_context(to, data);
#ifdef TENDRIL_ASAN
    __sanitizer_finish_switch_fiber(fake_stack ? *fake_stack : nullptr, nullptr, nullptr);
#endif
    return t;
}

// The first thing a new context does: finish the switch that started it, and
// learn the bounds of the stack it came from (the thread's own stack).
inline void context_started(StackBounds* from_stack) {
#ifdef TENDRIL_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &from_stack->lo, &from_stack->size);
#else
    (void)from_stack;
#endif
}

}  // namespace tendril
