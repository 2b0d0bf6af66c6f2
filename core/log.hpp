// Diagnostic logging to stderr, and the one path every log line takes.
//
// Small on purpose: a level, a timestamp and one line per call. Access logs
// are formatted by the HTTP handler (Python's format) but leave through the
// same log_write(). A write(2) to stderr can block -- a terminal scrolled
// back, a pipe whose reader is slow -- and on a scheduler thread that would
// stall every fiber, so once a Scheduler exists a sink installed by sched/
// takes the lines instead (sched/log_writer.hpp: buffered, non-blocking,
// drops counted). Before that, or where no sink takes them, lines go out
// with a plain write(2).
#pragma once

#include <string_view>

namespace tendril {

enum class LogLevel { debug, info, warning, error, off };

void set_log_level(LogLevel level) noexcept;
LogLevel log_level() noexcept;

void log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

#define TENDRIL_LOG(level, ...)                                      \
    do {                                                             \
        if ((level) >= ::tendril::log_level()) ::tendril::log((level), __VA_ARGS__); \
    } while (0)

// Complete lines ('\n'-terminated) for stderr, whole: lines from different
// fibers and threads never interleave.
void log_write(std::string_view lines) noexcept;

// The sink log_write() tries first: it returns false to decline (no
// scheduler on this thread), and the lines are then written directly.
// flush writes out what the sink holds for this thread, blocking (before
// the process ends on a fatal error). Either may be null.
struct LogSink {
    bool (*submit)(std::string_view lines) noexcept = nullptr;
    void (*flush)() noexcept = nullptr;
};
void set_log_sink(LogSink sink) noexcept;
// Write out this thread's pending lines now (blocking).
void log_flush() noexcept;

}  // namespace tendril
