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

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// A lenient reference decoder for what http-parser accepts: hex size,
// anything up to the line end (extensions), data, CRLF (or LF), and at size
// 0 trailer lines up to an empty line. Returns the body and how many bytes
// the chunked encoding took, or nullopt.
std::optional<std::pair<std::string, std::size_t>> reference_decode(std::string_view s) {
    std::string body;
    std::size_t i = 0;
    auto line_end = [&](std::size_t from) -> std::size_t { return s.find('\n', from); };
    for (;;) {
        std::size_t start = i;
        std::uint64_t size = 0;
        while (i < s.size() && is_hex(s[i])) {
            if (size >> 60) return std::nullopt;  // too large for us; http-parser refuses it too
            int v = s[i] <= '9' ? s[i] - '0' : (s[i] | 0x20) - 'a' + 10;
            size = size * 16 + static_cast<std::uint64_t>(v);
            ++i;
        }
        if (i == start) return std::nullopt;
        std::size_t nl = line_end(i);
        if (nl == std::string_view::npos) return std::nullopt;
        i = nl + 1;
        if (size == 0) break;
        if (s.size() - i < size) return std::nullopt;
        body.append(s.substr(i, size));
        i += size;
        if (i < s.size() && s[i] == '\r') ++i;
        if (i >= s.size() || s[i] != '\n') return std::nullopt;
        ++i;
    }
    // Trailers, then an empty line.
    for (;;) {
        std::size_t nl = line_end(i);
        if (nl == std::string_view::npos) return std::nullopt;
        std::string_view line = s.substr(i, nl - i);
        i = nl + 1;
        if (line.empty() || line == "\r") break;
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
        FUZZ_CHECK(split == whole, "the split changes the result (" + fuzz::describe_cuts(cuts) +
                                       ")\nwhole: " + fuzz::describe(whole) + "split: " + fuzz::describe(split) +
                                       "input: " + fuzz::show(encoded, 400));
    }

    const fuzz::Message& m = whole.messages[0];
    // The body can never be larger than its encoding.
    FUZZ_CHECK(m.body.size() <= encoded.size(), "decoded body larger than the encoding");
    if (m.ended) {
        auto ref = reference_decode(encoded);
        FUZZ_CHECK(ref.has_value(), "the parser accepted a chunked body the reference decoder refuses: " +
                                        fuzz::show(encoded, 400));
        FUZZ_CHECK(ref->first == m.body, "decoded bodies differ: parser " + fuzz::show(m.body) + " reference " +
                                             fuzz::show(ref->first) + " input " + fuzz::show(encoded, 400));
        // A request after the body is parsed from where the body ended.
        if (whole.messages.size() > 1)
            FUZZ_CHECK(ref->second < encoded.size(), "a second message out of nothing");
    } else if (!whole.error) {
        // Not finished and no error: the input ran out.
        FUZZ_CHECK(whole.incomplete, "unfinished body without an error or pending input");
    }
    return 0;
}
