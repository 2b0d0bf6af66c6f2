// Request and Response: plain HTTP/1.1 message values.
//
// They hold no socket and no parser state, so a handler can copy one, send it
// through a Channel to another fiber, store it, or turn it into bytes and
// back (serialize()/parse()).
#pragma once

#include "tendril/core/status.hpp"
#include "tendril/http/headers.hpp"

#include <string>
#include <string_view>

namespace tendril::http {

struct Request {
    std::string method = "GET";
    std::string target = "/";  // as sent: path and query ("/a/b?x=1")
    int version_major = 1;
    int version_minor = 1;
    Headers headers;
    std::string body;

    std::string version() const;            // "HTTP/1.1"
    std::string_view path() const;          // target before '?'
    std::string_view query() const;         // after '?', without it
    // HTTP/1.1 bytes; Content-Length is set from body when it has one and
    // no framing header is present.
    std::string serialize() const;
    // One complete request (head and body, Content-Length or chunked).
    static Result<Request> parse(std::string_view bytes);

    friend bool operator==(const Request&, const Request&) = default;
};

struct Response {
    int status = 200;
    std::string reason;  // empty: the standard phrase for status
    int version_major = 1;
    int version_minor = 1;
    Headers headers;
    std::string body;

    Response() = default;
    Response(int status_code, std::string body_text, std::string_view content_type = "text/plain")
        : status(status_code), body(std::move(body_text)) {
        if (!content_type.empty()) headers.add("Content-Type", content_type);
    }

    std::string serialize() const;
    // A complete response; a body without framing runs to the end of bytes.
    static Result<Response> parse(std::string_view bytes, bool head_request = false);

    friend bool operator==(const Response&, const Response&) = default;
};

}  // namespace tendril::http
