// fuzz_request_parser: the input is a byte stream from a client -- one
// request, or several pipelined. It is fed to RequestParser whole and cut in
// pieces at points derived from the input (byte by byte, at every line and
// field boundary, at pseudo-random offsets); every way must give the same
// messages, bodies and error status. parse_stream() checks the parser's
// contract on each call (consumed <= fed, errors sticky and only with the
// statuses a server sends, heads within the limits, framing unambiguous).
// Request::parse() must agree with the first message of the stream.
#include "fuzz_common.hpp"

#include <tendril/http/message.hpp>

using namespace tendril::http;

namespace {

void compare_with_request_parse(std::string_view in, const fuzz::Outcome& whole) {
    auto r = Request::parse(in);
    if (!whole.messages.empty() && whole.messages[0].ended) {
        const fuzz::Message& m = whole.messages[0];
        FUZZ_CHECK(r.ok(), "Request::parse failed on a request the stream parsed; error " + std::to_string(r.error));
        FUZZ_CHECK(r->method == m.method && r->target == m.target && r->body == m.body &&
                       r->version_major == m.version_major && r->version_minor == m.version_minor,
                   "Request::parse differs from the stream's first message");
        FUZZ_CHECK(r->headers.size() == m.headers.size(), "Request::parse header count");
        // A parsed request serializes to bytes that parse back to itself.
        Request copy = *r;
        copy.headers.remove("Transfer-Encoding");
        copy.headers.remove("Content-Length");
        std::string bytes = copy.serialize();
        auto again = Request::parse(bytes);
        if (again.ok()) {
            FUZZ_CHECK(again->method == copy.method && again->target == copy.target && again->body == copy.body,
                       "serialize/parse round trip: " + fuzz::show(bytes));
        }
        return;
    }
    FUZZ_CHECK(!r.ok(), "Request::parse accepted what the stream did not finish");
    if (whole.error)
        FUZZ_CHECK(r.error == whole.error,
                   "Request::parse status " + std::to_string(r.error) + " vs " + std::to_string(whole.error));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    ParserLimits defaults;
    ParserLimits small;  // so that 414 and 431 are reachable with short inputs
    small.max_request_line = 48;
    small.max_header_bytes = 96;
    small.max_headers = 4;
    int salt = 0;
    for (const ParserLimits& limits : {defaults, small}) {
        fuzz::Outcome whole = fuzz::parse_stream(in, {}, limits);
        if (salt == 0) compare_with_request_parse(in, whole);
        fuzz::Rng rng(in, static_cast<std::uint64_t>(++salt));
        std::vector<std::vector<std::size_t>> ways;
        if (size <= 4096)
            ways.push_back(fuzz::cuts_every(size, 1));
        else
            ways.push_back(fuzz::cuts_every(size, 7));
        ways.push_back(fuzz::cuts_at_syntax(in));
        if (size > 1) ways.push_back({1});
        if (size > 2) ways.push_back({size - 1});
        for (int i = 0; i < 3; ++i) ways.push_back(fuzz::cuts_random(rng, size, 1 + i * 4));
        for (const auto& cuts : ways) {
            fuzz::Outcome split = fuzz::parse_stream(in, cuts, limits);
            FUZZ_CHECK(fuzz::same_result(whole, split),
                       "the split changes the result: error " + std::to_string(whole.error) + " whole, " +
                           std::to_string(split.error) + " split (" + fuzz::describe_cuts(cuts) + ")\nwhole: " +
                           fuzz::describe(whole) + "split: " + fuzz::describe(split) + "input: " + fuzz::show(in, 400));
        }
    }
    return 0;
}
