// Diagnostic logging to stderr.
//
// Small on purpose: a level, a timestamp and one write(2) per line so lines
// from different fibers (and threads) never interleave. Access logs are not
// this: the HTTP handler writes them itself, in Python's format.
#pragma once

namespace tendril {

enum class LogLevel { debug, info, warning, error, off };

void set_log_level(LogLevel level) noexcept;
LogLevel log_level() noexcept;

void log(LogLevel level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

#define TENDRIL_LOG(level, ...)                                      \
    do {                                                             \
        if ((level) >= ::tendril::log_level()) ::tendril::log((level), __VA_ARGS__); \
    } while (0)

}  // namespace tendril
