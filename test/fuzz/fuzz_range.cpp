// fuzz_range: parse_range(header, size). Input: "<size>\n<Range value>"; a
// first line that is not a decimal number gives the size from its bytes.
//
// The oracle below is written from RFC 9110's grammar, not from range.cpp,
// so that a mistake made in one is not made in the other:
//
//   Range            = range-unit "=" range-set          (14.2, 14.1)
//   range-unit       = token                              (case-insensitive)
//   range-set        = 1#range-spec                       (5.6.1: #list)
//   range-spec       = int-range / suffix-range / other-range
//   int-range        = first-pos "-" [ last-pos ]         (1*DIGIT each)
//   suffix-range     = "-" suffix-length                  (1*DIGIT)
//
// A #list allows OWS only next to its commas and empty elements anywhere
// (5.6.1.2). Satisfiable (14.1.1): an int-range whose first-pos is below the
// length, or a suffix-range with a non-zero length. An int-range whose
// last-pos is below its first-pos is invalid, and an invalid Range is
// ignored (14.2), as is a unit other than bytes.
//
// Where tendril deliberately chooses among what the RFC allows, the oracle
// states the choice (policy): several ranges, a position longer than 19
// digits and a suffix range on an empty representation are answered with
// the whole representation; whitespace around the pieces is tolerated, so a
// value the grammar rejects may still be honoured if it means, with that
// whitespace removed, what the implementation answered.
#include "fuzz_common.hpp"

#include <tendril/http/range.hpp>

#include <charconv>
#include <cstring>
#include <optional>
#include <vector>

using namespace tendril::http;

namespace {

using Kind = ByteRange::Kind;

bool ows(char c) { return c == ' ' || c == '\t'; }
bool digit(char c) { return c >= '0' && c <= '9'; }
// RFC 9110 5.6.2.
bool tchar(char c) {
    if (digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}
bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!digit(c)) return false;
    return true;
}
bool ascii_iequal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
        if (x != y) return false;
    }
    return true;
}

ByteRange make(Kind k, std::uint64_t first = 0, std::uint64_t last = 0) {
    ByteRange r;
    r.kind = k;
    r.first = first;
    r.last = last;
    return r;
}

// What RFC 9110 (plus the stated policy) answers, or nullopt when the value
// does not match the grammar.
std::optional<ByteRange> oracle(std::string_view value, std::uint64_t size) {
    while (!value.empty() && ows(value.front())) value.remove_prefix(1);  // field-value has no OWS at its ends
    while (!value.empty() && ows(value.back())) value.remove_suffix(1);
    auto eq = value.find('=');
    if (eq == std::string_view::npos || eq == 0) return std::nullopt;
    std::string_view unit = value.substr(0, eq);
    for (char c : unit)
        if (!tchar(c)) return std::nullopt;
    if (!ascii_iequal(unit, "bytes")) return make(Kind::none);  // a unit we do not serve: ignored

    // The #list: split at commas; OWS may stand only beside a comma.
    std::vector<std::string_view> elements;
    std::string_view rest = value.substr(eq + 1);
    for (bool first_piece = true;; first_piece = false) {
        auto comma = rest.find(',');
        std::string_view piece = rest.substr(0, comma);
        bool last_piece = comma == std::string_view::npos;
        if (!first_piece)
            while (!piece.empty() && ows(piece.front())) piece.remove_prefix(1);
        if (!last_piece)
            while (!piece.empty() && ows(piece.back())) piece.remove_suffix(1);
        for (char c : piece)  // a range-spec is VCHARs without a comma
            if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) return std::nullopt;
        if (!piece.empty()) elements.push_back(piece);
        if (last_piece) break;
        rest.remove_prefix(comma + 1);
    }
    if (elements.empty()) return std::nullopt;  // 1#: at least one element

    // Classify each element; one that is neither int-range nor suffix-range
    // is an other-range, which bytes does not define: the Range is ignored.
    struct Spec {
        bool suffix;
        std::string_view a, b;
    };
    std::vector<Spec> specs;
    for (std::string_view e : elements) {
        auto dash = e.find('-');
        if (dash == std::string_view::npos) return make(Kind::none);
        std::string_view a = e.substr(0, dash), b = e.substr(dash + 1);
        if (a.empty()) {
            if (!all_digits(b)) return make(Kind::none);
            specs.push_back({true, a, b});
        } else {
            if (!all_digits(a) || !(b.empty() || all_digits(b))) return make(Kind::none);
            specs.push_back({false, a, b});
        }
    }
    if (specs.size() > 1) return make(Kind::none);  // policy: several ranges, the whole representation
    const Spec& s = specs[0];
    if (s.a.size() > 19 || s.b.size() > 19) return make(Kind::none);  // policy: beyond 64 bits
    auto num = [](std::string_view t) {
        std::uint64_t v = 0;
        std::from_chars(t.data(), t.data() + t.size(), v);
        return v;
    };
    if (s.suffix) {
        std::uint64_t n = num(s.b);
        if (n == 0) return make(Kind::unsatisfiable);
        if (size == 0) return make(Kind::none);  // policy: satisfiable, but no 206 can carry 0 bytes
        return make(Kind::satisfiable, n >= size ? 0 : size - n, size - 1);
    }
    std::uint64_t first = num(s.a);
    if (!s.b.empty() && num(s.b) < first) return make(Kind::none);  // invalid: ignored
    if (first >= size) return make(Kind::unsatisfiable);
    std::uint64_t last = s.b.empty() ? size - 1 : std::min(num(s.b), size - 1);
    return make(Kind::satisfiable, first, last);
}

const char* kind(Kind k) {
    switch (k) {
        case Kind::none: return "none";
        case Kind::satisfiable: return "satisfiable";
        case Kind::unsatisfiable: return "unsatisfiable";
    }
    return "?";
}

std::string show(const ByteRange& r) {
    return std::string(kind(r.kind)) + " [" + std::to_string(r.first) + ", " + std::to_string(r.last) + "]";
}

bool same(const ByteRange& x, const ByteRange& y) {
    if (x.kind != y.kind) return false;
    return x.kind != Kind::satisfiable || (x.first == y.first && x.last == y.last);
}

void check(std::string_view header, std::uint64_t size) {
    ByteRange r = parse_range(header, size);
    std::string ctx = "size " + std::to_string(size) + ", header " + fuzz::show(header) + ": " + show(r);
    switch (r.kind) {
        case Kind::satisfiable:
            FUZZ_CHECK(size > 0, ctx);
            FUZZ_CHECK(r.first <= r.last, ctx);
            FUZZ_CHECK(r.last < size, ctx);
            FUZZ_CHECK(r.length() >= 1 && r.length() <= size, ctx);
            break;
        case Kind::unsatisfiable:
        case Kind::none: break;
        default: FUZZ_CHECK(false, "unknown kind; " + ctx);
    }
    if (auto want = oracle(header, size)) {
        FUZZ_CHECK(same(*want, r), "RFC 9110 says " + show(*want) + "; " + ctx);
    } else if (r.kind != Kind::none) {
        // Outside the grammar: honoured only as the same value would be
        // without the whitespace range.hpp tolerates -- at the ends, after
        // the "=", and around a "," or "-"; never inside a number or the unit.
        std::string squeezed;
        for (std::size_t i = 0; i < header.size();) {
            if (!ows(header[i])) {
                squeezed += header[i++];
                continue;
            }
            std::size_t end = i;
            while (end < header.size() && ows(header[end])) ++end;
            char before = i == 0 ? '\0' : header[i - 1];
            char after = end == header.size() ? '\0' : header[end];
            bool tolerated = before == '\0' || after == '\0' || before == '=' || before == ',' ||
                             after == ',' || before == '-' || after == '-';
            if (!tolerated) squeezed.append(header.substr(i, end - i));
            i = end;
        }
        auto want_squeezed = oracle(squeezed, size);
        FUZZ_CHECK(want_squeezed.has_value(), "a value outside the grammar was honoured; " + ctx);
        FUZZ_CHECK(same(*want_squeezed, r),
                   "without whitespace RFC 9110 says " + show(*want_squeezed) + "; " + ctx);
    }
    // The same answer again (no hidden state).
    ByteRange again = parse_range(header, size);
    FUZZ_CHECK(again.kind == r.kind && again.first == r.first && again.last == r.last, ctx);
    // The unit's case does not matter (RFC 9110 14.1).
    std::string upper(header);
    for (char& c : upper)
        if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
    ByteRange folded = parse_range(upper, size);
    FUZZ_CHECK(folded.kind == r.kind && folded.first == r.first && folded.last == r.last,
               "upper-cased: " + show(folded) + "; " + ctx);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t len) {
    std::string_view in(reinterpret_cast<const char*>(data), len);
    auto nl = in.find('\n');
    std::string_view size_text = nl == std::string_view::npos ? std::string_view() : in.substr(0, nl);
    std::string_view header = nl == std::string_view::npos ? in : in.substr(nl + 1);
    std::uint64_t size = 0;
    auto [end, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size);
    if (size_text.empty() || ec != std::errc() || end != size_text.data() + size_text.size()) {
        size = 0;
        if (!size_text.empty()) std::memcpy(&size, size_text.data(), std::min<std::size_t>(size_text.size(), 8));
    }
    check(header, size);
    // The boundaries around the size, where off-by-ones live.
    for (std::uint64_t s : {std::uint64_t(0), std::uint64_t(1), size - 1, size + 1, ~std::uint64_t(0)})
        check(header, s);
    return 0;
}
