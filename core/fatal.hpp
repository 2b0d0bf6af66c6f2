// Fatal errors: report clearly on stderr, then end the process.
//
// A fiber library fails in ways a plain program does not (an exception that
// escapes a fiber, a stack overflow on a guard page, a deadlock where every
// fiber waits). Each of those must end with a message naming the fiber, never
// with a silent loss or a bare "Segmentation fault".
#pragma once

#include <cstddef>

namespace tendril {

// printf-style; prefixes "tendril: fatal: " and aborts (so a core dump and
// gdb still work).
[[noreturn]] void fatal(const char* fmt, ...) __attribute__((format(printf, 1, 2)));

// Async-signal-safe pieces for use inside signal handlers.
void signal_safe_write(const char* s) noexcept;
void signal_safe_write_number(unsigned long long v) noexcept;

}  // namespace tendril
