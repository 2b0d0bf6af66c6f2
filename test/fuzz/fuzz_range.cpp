// fuzz_range: parse_range(header, size). Input: "<size>\n<Range value>"; a
// first line that is not a decimal number gives the size from its bytes.
// Whatever the input: a satisfiable range has first <= last < size; a
// canonical single range ("bytes=A-B", "bytes=A-", "bytes=-N", digits only)
// gets exactly the RFC 9110 14.1.2 answer.
#include "fuzz_common.hpp"

#include <tendril/http/headers.hpp>
#include <tendril/http/range.hpp>

#include <charconv>
#include <cstring>

using namespace tendril::http;

namespace {

bool digits(std::string_view s) {
    if (s.empty() || s.size() > 19) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

std::uint64_t to_u64(std::string_view s) {
    std::uint64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v;
}

// The expected answer for the canonical forms; nullopt for everything else.
std::optional<ByteRange> expected(std::string_view header, std::uint64_t size) {
    if (header.substr(0, 6) != "bytes=") return std::nullopt;
    std::string_view spec = header.substr(6);
    auto dash = spec.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    std::string_view a = spec.substr(0, dash), b = spec.substr(dash + 1);
    ByteRange r;
    if (a.empty()) {
        if (!digits(b)) return std::nullopt;
        std::uint64_t n = to_u64(b);
        if (n == 0 || size == 0) {
            r.kind = ByteRange::Kind::unsatisfiable;
            return r;
        }
        r.kind = ByteRange::Kind::satisfiable;
        r.first = n >= size ? 0 : size - n;
        r.last = size - 1;
        return r;
    }
    if (!digits(a) || !(b.empty() || digits(b))) return std::nullopt;
    std::uint64_t first = to_u64(a);
    if (!b.empty() && to_u64(b) < first) return r;  // invalid: the header is ignored
    if (first >= size) {
        r.kind = ByteRange::Kind::unsatisfiable;
        return r;
    }
    r.kind = ByteRange::Kind::satisfiable;
    r.first = first;
    r.last = b.empty() ? size - 1 : std::min(to_u64(b), size - 1);
    return r;
}

const char* kind(ByteRange::Kind k) {
    switch (k) {
        case ByteRange::Kind::none: return "none";
        case ByteRange::Kind::satisfiable: return "satisfiable";
        case ByteRange::Kind::unsatisfiable: return "unsatisfiable";
    }
    return "?";
}

std::string show(const ByteRange& r) {
    return std::string(kind(r.kind)) + " [" + std::to_string(r.first) + ", " + std::to_string(r.last) + "]";
}

void check(std::string_view header, std::uint64_t size) {
    ByteRange r = parse_range(header, size);
    std::string ctx = "size " + std::to_string(size) + ", header " + fuzz::show(header) + ": " + show(r);
    switch (r.kind) {
        case ByteRange::Kind::satisfiable:
            FUZZ_CHECK(size > 0, ctx);
            FUZZ_CHECK(r.first <= r.last, ctx);
            FUZZ_CHECK(r.last < size, ctx);
            FUZZ_CHECK(r.length() >= 1 && r.length() <= size, ctx);
            break;
        case ByteRange::Kind::unsatisfiable:
        case ByteRange::Kind::none: break;
        default: FUZZ_CHECK(false, "unknown kind; " + ctx);
    }
    if (r.kind != ByteRange::Kind::none) {
        // Only a byte range can be used or refused.
        std::string_view h = header;
        while (!h.empty() && (h.front() == ' ' || h.front() == '\t')) h.remove_prefix(1);
        FUZZ_CHECK(h.size() >= 6 && iequals(h.substr(0, 6), "bytes="), ctx);
        FUZZ_CHECK(header.find(',') == std::string_view::npos, "several ranges are not served; " + ctx);
    }
    if (auto e = expected(header, size)) {
        FUZZ_CHECK(e->kind == r.kind, "expected " + show(*e) + "; " + ctx);
        if (e->kind == ByteRange::Kind::satisfiable)
            FUZZ_CHECK(e->first == r.first && e->last == r.last, "expected " + show(*e) + "; " + ctx);
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
