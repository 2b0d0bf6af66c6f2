// HTTP date formatting and parsing (see date_cache.hpp).
#include "tendril/http/date_cache.hpp"

#include <cstdio>
#include <cstring>

namespace tendril::http {

namespace {
const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

int month_index(std::string_view m) {
    for (int i = 0; i < 12; ++i)
        if (m == kMonths[i]) return i;
    return -1;
}

struct Cache {
    std::time_t second = -1;
    char text[40] = {};
    std::size_t len = 0;
};
thread_local Cache t_cache;
thread_local Cache t_log_cache;
}  // namespace

std::string http_date(std::time_t t) {
    std::tm tm;
    gmtime_r(&t, &tm);
    char buf[40];
    int n = std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                          tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                          tm.tm_sec);
    return std::string(buf, static_cast<std::size_t>(n));
}

// The text for this second, formatted again only when the second changes.
static std::string_view cached(Cache& c, std::string (*format)(std::time_t)) {
    std::time_t now = std::time(nullptr);
    if (now != c.second) {
        std::string s = format(now);
        std::memcpy(c.text, s.data(), s.size());
        c.len = s.size();
        c.second = now;
    }
    return {c.text, c.len};
}

std::string_view http_date_now() { return cached(t_cache, http_date); }

std::optional<std::time_t> parse_http_date(std::string_view s) {
    std::string str(s);
    char wd[16], mon[8];
    int d, y, hh, mm, ss;
    std::tm tm{};
    // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
    if (std::sscanf(str.c_str(), "%3s, %2d %3s %4d %2d:%2d:%2d GMT", wd, &d, mon, &y, &hh, &mm, &ss) == 7) {
    } else if (std::sscanf(str.c_str(), "%15[A-Za-z], %2d-%3s-%2d %2d:%2d:%2d GMT", wd, &d, mon, &y, &hh,
                           &mm, &ss) == 7) {  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        y += y < 70 ? 2000 : 1900;
    } else if (std::sscanf(str.c_str(), "%3s %3s %d %2d:%2d:%2d %4d", wd, mon, &d, &hh, &mm, &ss, &y) ==
               7) {  // asctime: Sun Nov  6 08:49:37 1994
    } else {
        return std::nullopt;
    }
    int m = month_index(mon);
    if (m < 0 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60) return std::nullopt;
    tm.tm_year = y - 1900;
    tm.tm_mon = m;
    tm.tm_mday = d;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    return timegm(&tm);
}

std::string log_date_time(std::time_t t) {
    std::tm tm;
    localtime_r(&t, &tm);
    char buf[32];
    int n = std::snprintf(buf, sizeof buf, "%02d/%s/%04d %02d:%02d:%02d", tm.tm_mday, kMonths[tm.tm_mon],
                          tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return std::string(buf, static_cast<std::size_t>(n));
}

std::string_view log_date_time_now() { return cached(t_log_cache, log_date_time); }

}  // namespace tendril::http
