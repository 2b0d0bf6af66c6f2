// fuzz_chunked: the input is a chunked request body (chunk sizes, extensions,
// data, trailers, and whatever follows). It goes behind a fixed head
//   POST / HTTP/1.1, Host: x, Transfer-Encoding: chunked
// and is parsed whole and in pieces: the decoded body (and everything else)
// must not depend on the split. When the parser accepts the body, a small
// independent decoder must accept the same bytes and decode the same body.
#include "fuzz_common.hpp"

using namespace tendril::http;

namespace {

const std::string_view kHead = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

bool is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// A reference decoder. Strict (the default): a hex size, an extension
// starting with ';', ' ' or HTAB, data, and trailer lines, each line ending
// in CRLF or a bare LF (as the head may), never a bare CR. Returns the body
// and the length of the encoding, or nullopt.
//
// Known bugs in http-parser 2.9 (non-strict, as Debian builds it) that the
// strict decoder catches (regressions/fuzz_chunked/):
//   - high-bit-*: unhex[256] has 128 initializers, so a byte >= 0x80 in a
//     chunk size reads as the digit 0 ("1\xcd" is 0x10);
//   - lenient-crlf-*: a CR ending the size line, a trailer line or the empty
//     line after the trailers may be followed by any byte instead of LF, and
//     the two bytes after the chunk data may be anything instead of CRLF.
// With FUZZ_KNOWN_BUGS=ignore the decoder does as http-parser does, to look
// for other bugs meanwhile.
std::optional<std::pair<std::string, std::size_t>> reference_decode(std::string_view s) {
    const bool emulate = fuzz::ignore_known_bugs();
    std::string body;
    std::size_t i = 0;
    auto high = [](char c) { return (static_cast<unsigned char>(c) & 0x80) != 0; };
    // A line end at i: CRLF or LF (strict), CR + any byte or LF (emulated).
    auto line_end = [&](std::size_t at) -> std::size_t {
        if (at < s.size() && s[at] == '\n') return at + 1;
        if (at + 1 < s.size() && s[at] == '\r' && (emulate || s[at + 1] == '\n')) return at + 2;
        return std::string_view::npos;
    };
    for (;;) {
        std::size_t start = i;
        std::uint64_t size = 0;
        while (i < s.size() && (is_hex(s[i]) || (emulate && high(s[i])))) {
            if (size >> 60) return std::nullopt;  // too large for us; http-parser refuses it too
            int v = high(s[i]) ? 0 : s[i] <= '9' ? s[i] - '0' : (s[i] | 0x20) - 'a' + 10;
            size = size * 16 + static_cast<std::uint64_t>(v);
            ++i;
        }
        if (i == start || i >= s.size()) return std::nullopt;
        if (s[i] == ';' || s[i] == ' ' || s[i] == '\t') {  // an extension, up to the line end
            if (emulate) {
                while (i < s.size() && s[i] != '\r') ++i;
            } else {
                while (i < s.size() && s[i] != '\r' && s[i] != '\n') ++i;
            }
        }
        std::size_t next = line_end(i);
        if (next == std::string_view::npos) return std::nullopt;
        if (emulate && s[i] == '\n') return std::nullopt;  // http-parser wants CR here
        i = next;
        if (size == 0) break;
        if (s.size() - i < size) return std::nullopt;
        body.append(s.substr(i, size));
        i += size;
        if (emulate) {
            if (s.size() - i < 2) return std::nullopt;
            i += 2;
        } else {
            next = line_end(i);
            if (next == std::string_view::npos) return std::nullopt;
            i = next;
        }
    }
    // Trailer lines, then an empty line.
    for (;;) {
        if (i >= s.size()) return std::nullopt;
        std::size_t next = line_end(i);
        if (next != std::string_view::npos) {
            i = next;
            break;
        }
        std::size_t nl = s.find('\n', i);
        if (emulate) {  // CR + any byte ends a line too
            std::size_t cr = s.find('\r', i);
            if (cr != std::string_view::npos && cr + 1 < s.size() && (nl == std::string_view::npos || cr + 1 < nl))
                nl = cr + 1;
        }
        if (nl == std::string_view::npos) return std::nullopt;
        std::string_view line = s.substr(i, nl - i);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (!emulate && line.find('\r') != std::string_view::npos) return std::nullopt;  // a bare CR
        i = nl + 1;
    }
    return std::make_pair(body, i);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view encoded(reinterpret_cast<const char*>(data), size);
    std::string in(kHead);
    in.append(encoded);
    ParserLimits limits;
    fuzz::Outcome whole = fuzz::parse_stream(in, {}, limits, 2);
    FUZZ_CHECK(!whole.messages.empty() && whole.messages[0].head && whole.messages[0].chunked,
               "the fixed head was not accepted: " + fuzz::describe(whole));

    // Two (and a few more) different splits give the same decoded body.
    fuzz::Rng rng(encoded);
    std::vector<std::vector<std::size_t>> ways;
    ways.push_back(fuzz::cuts_every(in.size(), 1));
    ways.push_back(fuzz::cuts_at_syntax(in));
    ways.push_back(fuzz::cuts_random(rng, in.size(), 8));
    ways.push_back({kHead.size()});
    for (const auto& cuts : ways) {
        fuzz::Outcome split = fuzz::parse_stream(in, cuts, limits, 2);
        FUZZ_CHECK(fuzz::same_result(whole, split),
                   "the split changes the result: error " + std::to_string(whole.error) + " whole, " +
                       std::to_string(split.error) + " split (" + fuzz::describe_cuts(cuts) +
                       ")\nwhole: " + fuzz::describe(whole) + "split: " + fuzz::describe(split) +
                       "input: " + fuzz::show(encoded, 400));
    }

    const fuzz::Message& m = whole.messages[0];
    // The body can never be larger than its encoding.
    FUZZ_CHECK(m.body.size() <= encoded.size(), "decoded body larger than the encoding");
    if (m.ended) {
        auto ref = reference_decode(encoded);
        FUZZ_CHECK(ref.has_value(),
                   "the parser accepted a chunked body the reference decoder refuses: " + fuzz::show(encoded, 400));
        FUZZ_CHECK(ref->first == m.body, "decoded bodies differ: parser " + fuzz::show(m.body) + " reference " +
                                             fuzz::show(ref->first) + " input " + fuzz::show(encoded, 400));
        // A request after the body is parsed from where the body ended.
        if (whole.messages.size() > 1) {
            FUZZ_CHECK(ref->second < encoded.size(), "a second message out of nothing");
            fuzz::Outcome rest = fuzz::parse_stream(encoded.substr(ref->second), {}, limits, 1);
            FUZZ_CHECK(!rest.messages.empty() && rest.messages[0] == whole.messages[1],
                       "the next request is not where the reference decoder ends the body");
        }
    } else if (!whole.error) {
        // Not finished and no error: the input ran out.
        FUZZ_CHECK(whole.incomplete, "unfinished body without an error or pending input");
    }
    return 0;
}
