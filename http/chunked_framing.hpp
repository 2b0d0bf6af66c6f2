// ChunkedFraming: a strict check of chunked framing (RFC 9112 7.1), run
// beside http-parser over exactly the bytes it consumes.
//
// The Debian build of http-parser decodes chunked bodies but is lenient in
// ways that open request smuggling between it and a stricter front end: a
// byte >= 0x80 in a chunk size reads as 0, a CR followed by any byte ends a
// line, and any two bytes pass for the CRLF after chunk data. It still does
// the decoding; this only says whether the framing was well-formed, so that
// the connection can answer 400 and close instead of guessing.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tendril::http {

class ChunkedFraming {
public:
    // Feed the next bytes of the body (framing and data alike, in order).
    // False as soon as they cannot be well-formed chunked framing.
    bool feed(const char* p, std::size_t n);
    // The last chunk, trailers and final CRLF have all been seen.
    bool done() const { return state_ == State::done; }
    void reset() { *this = ChunkedFraming(); }

private:
    enum class State : std::uint8_t {
        size, size_any, ext, size_lf, data, data_cr, data_lf, trailer_start, trailer, trailer_lf, final_lf, done,
    };
    State state_ = State::size;
    std::uint64_t size_ = 0;
    std::uint64_t left_ = 0;
};

}  // namespace tendril::http
