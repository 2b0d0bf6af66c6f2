// Fatal error reporting (see fatal.hpp).
#include "tendril/core/fatal.hpp"

#include "tendril/core/log.hpp"

#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace tendril {

void fatal(const char* fmt, ...) {
    // The log lines that led here come first (they may be waiting for a
    // slow stderr); once only, should flushing itself end up in fatal().
    static thread_local bool flushing = false;
    if (!flushing) {
        flushing = true;
        log_flush();
    }
    char buf[1024];
    int n = std::snprintf(buf, sizeof buf, "tendril: fatal: ");
    va_list ap;
    va_start(ap, fmt);
    int m = std::vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
    va_end(ap);
    std::size_t len = std::strlen(buf);
    (void)m;
    if (len == 0 || buf[len - 1] != '\n') {
        buf[len++] = '\n';
        buf[len] = 0;
    }
    signal_safe_write(buf);
    std::abort();
}

void signal_safe_write(const char* s) noexcept {
    std::size_t len = std::strlen(s);
    while (len > 0) {
        ssize_t n = ::write(STDERR_FILENO, s, len);
        if (n <= 0) return;
        s += n;
        len -= static_cast<std::size_t>(n);
    }
}

void signal_safe_write_number(unsigned long long v) noexcept {
    char buf[24];
    char* p = buf + sizeof buf - 1;
    *p = 0;
    do {
        *--p = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v != 0);
    signal_safe_write(p);
}

}  // namespace tendril
