// Which sanitizer this translation unit is built with: TENDRIL_ASAN,
// TENDRIL_TSAN, TENDRIL_MSAN (GCC spells them __SANITIZE_*__, clang
// __has_feature). Code that bypasses libc, or switches stacks, asks here.
#pragma once

#if defined(__SANITIZE_ADDRESS__)
#define TENDRIL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TENDRIL_ASAN 1
#endif
#endif

#if defined(__SANITIZE_THREAD__)
#define TENDRIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TENDRIL_TSAN 1
#endif
#endif

#if defined(__has_feature)
#if __has_feature(memory_sanitizer)
#define TENDRIL_MSAN 1
#endif
#endif
