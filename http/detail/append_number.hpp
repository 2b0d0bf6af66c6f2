// Numbers into a response or a log line without a temporary std::string:
// the handler formats several per request, at 100k requests a second.
// Not installed (http/detail/): the handler's .cpp files share it.
#pragma once

#include "tendril/core/buffer.hpp"

#include <charconv>
#include <string>

namespace tendril::http::detail {

inline void append_number(std::string& s, unsigned long long v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    s.append(buf, end);
}

inline void append_number(ByteBuffer& b, unsigned long long v, int base = 10) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, base);
    b.append(buf, static_cast<std::size_t>(end - buf));
}

}  // namespace tendril::http::detail
