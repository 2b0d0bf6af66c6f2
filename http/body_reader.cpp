// The request body: rfile, the buffered body of a BodyPolicy, and what is
// left unread when the handler returns. The body is decoded by the parser
// straight out of the read buffer, so a piece is only good until the next
// read; state_.piece holds what a short read() left of one.
#include "tendril/http/handler.hpp"

#include <cstring>

namespace tendril::http {

std::string BodyReader::read(std::size_t n) {
    std::string out;
    while (out.size() < n) {
        std::string_view piece = h_->state_.piece.empty() ? h_->body_next() : h_->state_.piece;
        if (piece.empty()) break;
        std::size_t take = std::min(n - out.size(), piece.size());
        out.append(piece.data(), take);
        h_->state_.piece = piece.substr(take);
    }
    return out;
}

std::size_t BodyReader::read(void* buf, std::size_t n) { return h_->body_read(buf, n); }

std::string_view BodyReader::read_chunk() {
    std::string_view piece = h_->state_.piece.empty() ? h_->body_next() : h_->state_.piece;
    h_->state_.piece = {};
    return piece;
}

bool BodyReader::at_end() {
    if (!h_->state_.piece.empty()) return false;
    h_->state_.piece = h_->body_next();
    return h_->state_.piece.empty();
}

std::string_view BaseHTTPRequestHandler::body_next() {
    RequestState& s = state_;
    if (s.body_done) return {};
    // 100 Continue only makes sense before any of the final response left.
    // Never to an HTTP/1.0 client: it cannot know a 1xx (RFC 9110 10.1.1).
    if (!s.continue_sent && s.http11 && parser_.expects_continue() && parser_.has_body() && !s.response_flushed) {
        s.continue_sent = true;
        if (!handle_expect_100()) {
            s.refused_body = s.body_done = true;
            close_connection = true;
            return {};
        }
    }
    for (;;) {
        if (!in_.empty()) {
            std::size_t used = 0;
            auto ev = parser_.feed(in_.data(), in_.size(), &used);
            // The piece points into in_; the bytes stay put until the next read.
            in_.consume(used);
            if (ev == RequestParser::Event::body) return parser_.body_piece();
            if (ev == RequestParser::Event::end) {
                s.body_done = true;
                return {};
            }
            if (ev == RequestParser::Event::error) {
                s.body_done = true;
                close_connection = true;
                throw HttpError(parser_.error_status(), std::string(parser_.error_message()));
            }
        }
        IoResult r;
        if (!read_more(after(config_->body_timeout), &r)) {
            s.body_done = true;
            close_connection = true;
            Status st = r.status == Status::ok ? Status::eof : r.status;
            throw IoError(st, r.error, "reading the request body: " + describe(st, r.error));
        }
    }
}

std::size_t BaseHTTPRequestHandler::body_read(void* buf, std::size_t n) {
    std::string_view& piece = state_.piece;
    if (piece.empty()) piece = body_next();
    std::size_t take = std::min(n, piece.size());
    std::memcpy(buf, piece.data(), take);
    piece.remove_prefix(take);
    return take;
}

bool BaseHTTPRequestHandler::read_buffered_body() {
    auto cl = parser_.content_length();
    if (cl && *cl > policy_.max_size) {
        // Refused before a byte of it is read (and before any 100 Continue).
        state_.refused_body = state_.body_done = linger_ = true;
        send_error(413, "Request Entity Too Large",
                   "The body is " + std::to_string(*cl) + " bytes; the limit is " +
                       std::to_string(policy_.max_size));
        return false;
    }
    for (;;) {
        std::string_view p = body_next();
        if (p.empty()) break;
        if (body_.size() + p.size() > policy_.max_size) {
            state_.refused_body = state_.body_done = linger_ = true;
            send_error(413, "Request Entity Too Large",
                       "The body exceeds the limit of " + std::to_string(policy_.max_size) + " bytes");
            return false;
        }
        body_.append(p);
    }
    return !state_.refused_body;
}

// The next request on the connection starts where this body ends, so what
// the handler did not read is read and dropped -- up to a limit, past which
// closing is cheaper than reading.
bool BaseHTTPRequestHandler::drain_body() {
    if (state_.body_done) return !state_.refused_body;
    // The client waits for 100 Continue before it sends the body: it never
    // got one, so what follows on this connection is unknowable.
    if (state_.http11 && parser_.expects_continue() && parser_.has_body() && !state_.continue_sent) return false;
    std::size_t drained = state_.piece.size();
    state_.piece = {};
    while (!state_.body_done) {
        drained += body_next().size();
        if (drained > config_->drain_limit) {
            linger_ = true;  // the rest is still coming: close gently
            return false;
        }
    }
    return true;
}

}  // namespace tendril::http
