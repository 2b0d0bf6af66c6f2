// The Range request header (RFC 9110 14.1.2), for a single byte range:
// "bytes=A-B", "bytes=A-" and "bytes=-N". Several ranges are answered with
// the whole representation (a server may ignore Range), which keeps
// multipart/byteranges out of the picture; so are positions longer than 19
// digits. Spaces around the pieces are tolerated, as Go's net/http does.
#pragma once

#include <cstdint>
#include <string_view>

namespace tendril::http {

struct ByteRange {
    enum class Kind : std::uint8_t {
        none,           // no usable Range: send everything (200)
        satisfiable,    // send [first, last] (206)
        unsatisfiable,  // 416 with Content-Range: bytes */size
    };
    Kind kind = Kind::none;
    std::uint64_t first = 0;
    std::uint64_t last = 0;  // inclusive
    std::uint64_t length() const { return last - first + 1; }
};

// `header` is the Range value; size the representation's length.
ByteRange parse_range(std::string_view header, std::uint64_t size);

}  // namespace tendril::http
