// Diagnostic logging (see log.hpp). The level comes from TENDRIL_LOG_LEVEL
// (debug, info, warning, error, off) when set, warning otherwise.
#include "tendril/core/log.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace tendril {

namespace {
LogLevel level_from_env() {
    const char* v = std::getenv("TENDRIL_LOG_LEVEL");
    if (!v) return LogLevel::warning;
    if (!std::strcmp(v, "debug")) return LogLevel::debug;
    if (!std::strcmp(v, "info")) return LogLevel::info;
    if (!std::strcmp(v, "error")) return LogLevel::error;
    if (!std::strcmp(v, "off")) return LogLevel::off;
    return LogLevel::warning;
}
std::atomic<LogLevel> g_level{level_from_env()};
std::atomic<bool (*)(std::string_view) noexcept> g_submit{nullptr};
std::atomic<void (*)() noexcept> g_flush{nullptr};

void write_directly(std::string_view s) noexcept {
    while (!s.empty()) {
        ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        s.remove_prefix(static_cast<std::size_t>(n));
    }
}
const char* level_name(LogLevel l) {
    switch (l) {
    case LogLevel::debug: return "debug";
    case LogLevel::info: return "info";
    case LogLevel::warning: return "warning";
    case LogLevel::error: return "error";
    default: return "";
    }
}
}  // namespace

void set_log_level(LogLevel level) noexcept { g_level.store(level, std::memory_order_relaxed); }
LogLevel log_level() noexcept { return g_level.load(std::memory_order_relaxed); }

void log(LogLevel level, const char* fmt, ...) {
    if (level < log_level()) return;
    char buf[2048];
    std::time_t now = std::time(nullptr);
    std::tm tm;
    localtime_r(&now, &tm);
    std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    n += std::snprintf(buf + n, sizeof buf - n, " tendril %s: ", level_name(level));
    va_list ap;
    va_start(ap, fmt);
    int m = std::vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
    va_end(ap);
    n = m < 0 ? n : std::min(sizeof buf - 2, n + static_cast<std::size_t>(m));
    buf[n++] = '\n';
    log_write(std::string_view(buf, n));
}

void log_write(std::string_view lines) noexcept {
    auto submit = g_submit.load(std::memory_order_acquire);
    if (submit && submit(lines)) return;
    write_directly(lines);
}

void set_log_sink(LogSink sink) noexcept {
    g_flush.store(sink.flush, std::memory_order_release);
    g_submit.store(sink.submit, std::memory_order_release);
}

void log_flush() noexcept {
    if (auto flush = g_flush.load(std::memory_order_acquire)) flush();
}

}  // namespace tendril
