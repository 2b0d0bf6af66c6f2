// Range parsing (see range.hpp).
#include "tendril/http/range.hpp"

#include "tendril/http/headers.hpp"

#include <charconv>

namespace tendril::http {

namespace {
std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}
bool number(std::string_view s, std::uint64_t* out) {
    if (s.empty() || s.size() > 19) return false;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
    return ec == std::errc() && end == s.data() + s.size();
}
// The one non-empty element of a comma-separated list in *out; false when
// there are none or several. Empty elements ("0-9," or ", 0-9") must be accepted
// (RFC 9110 5.6.1.2) and do not make a second range.
bool single_element(std::string_view list, std::string_view* out) {
    *out = {};
    int seen = 0;
    for (;;) {
        auto comma = list.find(',');
        std::string_view element = trim(list.substr(0, comma));
        if (!element.empty()) {
            if (++seen > 1) return false;
            *out = element;
        }
        if (comma == std::string_view::npos) return seen == 1;
        list.remove_prefix(comma + 1);
    }
}
}  // namespace

ByteRange parse_range(std::string_view header, std::uint64_t size) {
    ByteRange r;
    header = trim(header);
    // Range units are case-insensitive (RFC 9110 14.1): "Bytes=" is bytes.
    if (header.size() < 6 || !iequals(header.substr(0, 6), "bytes=")) return r;  // another unit: ignore
    std::string_view spec;
    if (!single_element(header.substr(6), &spec)) return r;  // several ranges (or none): send it all
    auto dash = spec.find('-');
    if (dash == std::string_view::npos) return r;
    std::string_view a = trim(spec.substr(0, dash)), b = trim(spec.substr(dash + 1));
    std::uint64_t first = 0, last = 0;
    if (a.empty()) {  // suffix: the last N bytes
        if (!number(b, &last)) return r;
        if (last == 0) {
            r.kind = ByteRange::Kind::unsatisfiable;
            return r;
        }
        // An empty representation satisfies a suffix range with all of
        // itself (RFC 9110 14.1.1), and no Content-Range can describe zero
        // bytes: the whole (empty) representation is the answer.
        if (size == 0) return r;
        r.kind = ByteRange::Kind::satisfiable;
        r.first = last >= size ? 0 : size - last;
        r.last = size - 1;
        return r;
    }
    if (!number(a, &first)) return r;
    if (b.empty()) {
        last = size ? size - 1 : 0;
    } else {
        if (!number(b, &last) || last < first) return r;  // invalid: ignore the header
        if (last >= size) last = size ? size - 1 : 0;
    }
    if (first >= size) {
        r.kind = ByteRange::Kind::unsatisfiable;
        return r;
    }
    r.kind = ByteRange::Kind::satisfiable;
    r.first = first;
    r.last = last;
    return r;
}

}  // namespace tendril::http
