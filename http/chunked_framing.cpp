// ChunkedFraming (see chunked_framing.hpp).
#include "tendril/http/chunked_framing.hpp"

#include <algorithm>

namespace tendril::http {

namespace {
int hex(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
// Field and extension text: visible bytes, space, tab, obs-text; no CTLs.
bool text(unsigned char c) { return c == '\t' || (c >= 0x20 && c != 0x7f); }
}  // namespace

bool ChunkedFraming::feed(const char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        auto c = static_cast<unsigned char>(p[i]);
        switch (state_) {
        case State::size:  // at least one hex digit
            if (hex(c) < 0) return false;
            size_ = static_cast<std::uint64_t>(hex(c));
            state_ = State::size_any;
            break;
        case State::size_any:
            if (hex(c) >= 0) {
                if (size_ >> 56) return false;  // absurd sizes overflow nothing here
                size_ = size_ * 16 + static_cast<std::uint64_t>(hex(c));
            } else if (c == ';' || c == ' ' || c == '\t') {
                state_ = State::ext;
            } else if (c == '\r') {
                state_ = State::size_lf;
            } else {
                return false;
            }
            break;
        case State::ext:
            if (c == '\r') state_ = State::size_lf;
            else if (!text(c)) return false;
            break;
        case State::size_lf:
            if (c != '\n') return false;
            left_ = size_;
            state_ = size_ ? State::data : State::trailer_start;
            break;
        case State::data: {
            std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(left_, n - i));
            left_ -= take;
            i += take - 1;
            if (left_ == 0) state_ = State::data_cr;
            break;
        }
        case State::data_cr:
            if (c != '\r') return false;
            state_ = State::data_lf;
            break;
        case State::data_lf:
            if (c != '\n') return false;
            state_ = State::size;
            break;
        case State::trailer_start:
            if (c == '\r') state_ = State::final_lf;
            else if (!text(c) || c == ' ' || c == '\t') return false;  // no obs-fold
            else state_ = State::trailer;
            break;
        case State::trailer:
            if (c == '\r') state_ = State::trailer_lf;
            else if (!text(c)) return false;
            break;
        case State::trailer_lf:
            if (c != '\n') return false;
            state_ = State::trailer_start;
            break;
        case State::final_lf:
            if (c != '\n') return false;
            state_ = State::done;
            break;
        case State::done:
            return false;  // bytes past the end belong to no chunk
        }
    }
    return true;
}

}  // namespace tendril::http
