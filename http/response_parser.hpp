// ResponseParser: http-parser in response mode, for the client side.
//
// Same shape as RequestParser (pause at head, at each body piece, at the
// end), plus what only responses have: a body that runs until the server
// closes (finish() ends it), no body for HEAD, and interim 1xx responses.
#pragma once

#include "tendril/http/message.hpp"

#include <http_parser.h>

#include <cstdint>
#include <string_view>

namespace tendril::http {

class ResponseParser {
public:
    enum class Event : std::uint8_t { need_more, head, body, end, error };

    ResponseParser();
    ResponseParser(const ResponseParser&) = delete;
    ResponseParser& operator=(const ResponseParser&) = delete;

    // head_request: the request was HEAD, so no body follows whatever the
    // headers say.
    void reset(bool head_request = false);
    Event feed(const char* data, std::size_t len, std::size_t* consumed);
    // The server closed the connection: ends a close-delimited body.
    Event finish();

    Response& response() { return resp_; }
    std::string_view body_piece() const { return piece_; }
    bool keep_alive() const { return keep_alive_; }
    bool started() const { return started_; }
    const char* error() const { return error_; }

private:
    bool execute(const char* data, std::size_t len, std::size_t* parsed, Event* ev);
    static const http_parser_settings kSettings;
    static int on_message_begin(http_parser* p);
    static int on_status(http_parser* p, const char* at, std::size_t n);
    static int on_header_field(http_parser* p, const char* at, std::size_t n);
    static int on_header_value(http_parser* p, const char* at, std::size_t n);
    static int on_headers_complete(http_parser* p);
    static int on_body(http_parser* p, const char* at, std::size_t n);
    static int on_message_complete(http_parser* p);

    http_parser parser_;
    Response resp_;
    std::string_view piece_;
    Event pending_ = Event::need_more;
    bool head_request_ = false, started_ = false, head_done_ = false, in_value_ = false;
    bool field_started_ = false, keep_alive_ = false;
    const char* error_ = "";
};

}  // namespace tendril::http
