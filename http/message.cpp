// Request and Response as values: serialization and parsing (see message.hpp).
#include "tendril/http/message.hpp"

#include "tendril/http/request_parser.hpp"
#include "tendril/http/response_parser.hpp"
#include "tendril/http/status.hpp"

namespace tendril::http {

namespace {
bool has_framing(const Headers& h) { return h.contains("Content-Length") || h.contains("Transfer-Encoding"); }
}  // namespace

std::string Request::version() const {
    return "HTTP/" + std::to_string(version_major) + "." + std::to_string(version_minor);
}

std::string_view Request::path() const {
    std::string_view t = target;
    return t.substr(0, t.find('?'));
}

std::string_view Request::query() const {
    std::string_view t = target;
    auto q = t.find('?');
    return q == std::string_view::npos ? std::string_view() : t.substr(q + 1);
}

std::string Request::serialize() const {
    std::string out = method + " " + target + " " + version() + "\r\n";
    headers.write_to(out);
    if (!has_framing(headers) && (!body.empty() || method == "POST" || method == "PUT"))
        out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "\r\n";
    out += body;
    return out;
}

Result<Request> Request::parse(std::string_view bytes) {
    Result<Request> r;
    RequestParser p;
    std::size_t off = 0;
    for (;;) {
        std::size_t used = 0;
        auto ev = p.feed(bytes.data() + off, bytes.size() - off, &used);
        off += used;
        switch (ev) {
        case RequestParser::Event::head: continue;
        case RequestParser::Event::body: p.request().body.append(p.body_piece()); continue;
        case RequestParser::Event::end: r.value = std::move(p.request()); return r;
        case RequestParser::Event::need_more:
        case RequestParser::Event::error:
            r.status = ev == RequestParser::Event::error ? Status::error : Status::eof;
            r.error = p.error_status();
            return r;
        }
    }
}

std::string Response::serialize() const {
    std::string out = "HTTP/" + std::to_string(version_major) + "." + std::to_string(version_minor) + " " +
                      std::to_string(status) + " " + (reason.empty() ? reason_phrase(status) : reason) +
                      "\r\n";
    headers.write_to(out);
    if (!has_framing(headers) && status_has_body(status))
        out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "\r\n";
    out += body;
    return out;
}

Result<Response> Response::parse(std::string_view bytes, bool head_request) {
    Result<Response> r;
    ResponseParser p;
    p.reset(head_request);
    std::size_t off = 0;
    bool finished = false;
    for (;;) {
        std::size_t used = 0;
        ResponseParser::Event ev;
        if (off < bytes.size()) {
            ev = p.feed(bytes.data() + off, bytes.size() - off, &used);
        } else if (!finished) {
            finished = true;  // the end of the bytes ends a close-delimited body
            ev = p.finish();
        } else {
            r.status = Status::eof;
            return r;
        }
        off += used;
        switch (ev) {
        case ResponseParser::Event::head: continue;
        case ResponseParser::Event::body: p.response().body.append(p.body_piece()); continue;
        case ResponseParser::Event::end: r.value = std::move(p.response()); return r;
        case ResponseParser::Event::need_more: continue;
        case ResponseParser::Event::error: r.status = Status::error; return r;
        }
    }
}

}  // namespace tendril::http
