// RequestParser: the glue between a connection and nodejs http-parser.
//
// http-parser is fast and careful but leaves the hard parts to its user: its
// data callbacks arrive in pieces whose pointers die with the callback, it
// has no notion of limits beyond one global header size, and the Debian
// build is lenient (it takes "Host : x", obs-fold, "gzip" codings). This file
// collects the pieces into a Request, enforces limits and strictness, and
// maps every failure to the status a client should get:
//
//   request line (URL) over max_request_line    414
//   more than max_headers, or over max_header_bytes   431
//   HTTP/2 or later                              505
//   a method outside http-parser's table         501 (if it is a token, else 400)
//   a transfer coding other than chunked         501
//   anything else malformed, incl. request smuggling attempts (Content-Length
//   with Transfer-Encoding, two Content-Lengths, chunked not the last coding,
//   a bad chunk size, obs-fold, whitespace in a field name, HTTP/1.1 without
//   Host, a Host that is not host[:port], a request line that is not
//   exactly "METHOD SP target SP version", HTTP/0.9, "*" other than for
//   OPTIONS, a fragment in the target)   400
//
// feed() pauses the parser at each step a connection acts on: the end of the
// head, each body piece, and the end of the message (so pipelined requests
// are never parsed ahead of their turn).
//
// Where the Debian build is lenient, the bytes it consumed are checked again
// strictly: every CR in the head must be followed by LF (a CR followed by
// anything else ends a line for http-parser, but not for every front end),
// the request line must end in exactly " HTTP/d.d", and chunked framing must
// be exact (see chunked_framing.hpp). A mismatch is a 400.
#pragma once

#include "tendril/http/chunked_framing.hpp"
#include "tendril/http/message.hpp"

#include <http_parser.h>

#include <cstdint>
#include <optional>
#include <string_view>

namespace tendril::http {

struct ParserLimits {
    std::size_t max_request_line = 64 * 1024;
    std::size_t max_header_bytes = 64 * 1024;
    std::size_t max_headers = 100;
};

class RequestParser {
public:
    enum class Event : std::uint8_t {
        need_more,  // everything given was consumed; feed more
        head,       // request() holds method, target, version, headers
        body,       // body_piece() holds the next piece of the (decoded) body
        end,        // the message is complete
        error,      // error_status() says which response to send
    };

    explicit RequestParser(ParserLimits limits = {});
    RequestParser(const RequestParser&) = delete;
    RequestParser& operator=(const RequestParser&) = delete;

    void set_limits(const ParserLimits& limits) { limits_ = limits; }
    // Ready for the next message on the same connection: required after
    // Event::end before the next feed().
    void reset();
    // Parse from data; *consumed tells how much was used (resume from there).
    Event feed(const char* data, std::size_t len, std::size_t* consumed);
    // The peer closed the connection: error if a message was under way.
    Event finish();

    Request& request() { return req_; }
    std::string_view body_piece() const { return piece_; }
    bool started() const { return started_; }
    bool head_done() const { return head_done_; }

    // After head:
    bool keep_alive() const { return keep_alive_; }
    bool chunked() const { return chunked_; }
    std::optional<std::uint64_t> content_length() const { return content_length_; }
    bool has_body() const { return chunked_ || (content_length_ && *content_length_ > 0); }
    bool expects_continue() const { return expect_continue_; }
    bool upgrade() const { return upgrade_; }

    // The request line as received, without CRLF ("" when it was too long),
    // for the access log of requests that were refused.
    std::string_view raw_request_line() const { return raw_line_too_long_ ? std::string_view() : raw_line_; }

    int error_status() const { return error_status_; }
    std::string_view error_message() const { return error_message_; }

private:
    static const http_parser_settings kSettings;
    static int on_message_begin(http_parser* p);
    static int on_url(http_parser* p, const char* at, std::size_t n);
    static int on_header_field(http_parser* p, const char* at, std::size_t n);
    static int on_header_value(http_parser* p, const char* at, std::size_t n);
    static int on_headers_complete(http_parser* p);
    static int on_body(http_parser* p, const char* at, std::size_t n);
    static int on_message_complete(http_parser* p);
    int fail(int status, const char* message);
    int check_head();
    int check_request_line();
    void map_parser_error(const char* data, std::size_t len);

    ParserLimits limits_;
    http_parser parser_;
    Request req_;
    std::string_view piece_;
    Event pending_ = Event::need_more;
    const char* feed_end_ = nullptr;
    std::size_t header_bytes_ = 0;
    std::size_t fed_before_ = 0;  // bytes of this message fed before the current call
    bool started_ = false, head_done_ = false, in_value_ = false, value_hit_end_ = false;
    bool field_started_ = false;
    bool keep_alive_ = false, chunked_ = false, expect_continue_ = false, upgrade_ = false;
    std::optional<std::uint64_t> content_length_;
    std::string raw_line_;
    bool raw_line_done_ = false, raw_line_too_long_ = false;
    void capture_line(const char* data, std::size_t len);
    bool strict_check(const char* data, std::size_t consumed, std::size_t len, bool head_was_done);
    ChunkedFraming chunk_framing_;
    bool expect_head_lf_ = false;  // the head's last LF comes with the next bytes
    int error_status_ = 0;
    const char* error_message_ = "";
};

}  // namespace tendril::http
