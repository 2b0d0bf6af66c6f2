// HTTP dates: the Date header is the same for every response within a
// second, so it is formatted once per second per thread, not per request.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace tendril::http {

// "Sun, 22 Nov 2026 04:20:00 GMT" for now, cached per second.
std::string_view http_date_now();
// The same format for any time (Last-Modified).
std::string http_date(std::time_t t);
// Parse the three formats RFC 9110 5.6.7 requires recipients to accept.
std::optional<std::time_t> parse_http_date(std::string_view s);
// "22/Nov/2026 04:20:00", local time, as Python's log_date_time_string().
std::string log_date_time(std::time_t t);
// The same for now, cached per second.
std::string_view log_date_time_now();

}  // namespace tendril::http
