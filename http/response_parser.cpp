// ResponseParser (see response_parser.hpp).
#include "tendril/http/response_parser.hpp"

namespace tendril::http {

namespace {
ResponseParser* self(http_parser* p) { return static_cast<ResponseParser*>(p->data); }
}  // namespace

const http_parser_settings ResponseParser::kSettings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_message_begin = &ResponseParser::on_message_begin;
    s.on_status = &ResponseParser::on_status;
    s.on_header_field = &ResponseParser::on_header_field;
    s.on_header_value = &ResponseParser::on_header_value;
    s.on_headers_complete = &ResponseParser::on_headers_complete;
    s.on_body = &ResponseParser::on_body;
    s.on_message_complete = &ResponseParser::on_message_complete;
    return s;
}();

ResponseParser::ResponseParser() { reset(); }

void ResponseParser::reset(bool head_request) {
    http_parser_init(&parser_, HTTP_RESPONSE);
    parser_.data = this;
    resp_ = Response();
    piece_ = {};
    pending_ = Event::need_more;
    head_request_ = head_request;
    started_ = head_done_ = in_value_ = field_started_ = keep_alive_ = false;
    error_ = "";
}

int ResponseParser::on_message_begin(http_parser* p) {
    self(p)->started_ = true;
    return 0;
}

int ResponseParser::on_status(http_parser* p, const char* at, std::size_t n) {
    self(p)->resp_.reason.append(at, n);
    return 0;
}

int ResponseParser::on_header_field(http_parser* p, const char* at, std::size_t n) {
    ResponseParser* r = self(p);
    bool new_field = r->in_value_ || !r->field_started_;
    r->field_started_ = true;
    r->in_value_ = false;
    if (r->head_done_) return 0;  // trailers
    if (new_field) r->resp_.headers.begin_field();
    r->resp_.headers.append_name({at, n});
    return 0;
}

int ResponseParser::on_header_value(http_parser* p, const char* at, std::size_t n) {
    ResponseParser* r = self(p);
    r->in_value_ = true;
    if (!r->head_done_) r->resp_.headers.append_value({at, n});
    return 0;
}

int ResponseParser::on_headers_complete(http_parser* p) {
    ResponseParser* r = self(p);
    r->resp_.status = p->status_code;
    r->resp_.version_major = p->http_major;
    r->resp_.version_minor = p->http_minor;
    r->keep_alive_ = http_should_keep_alive(p) != 0;
    r->head_done_ = true;
    r->pending_ = Event::head;
    http_parser_pause(p, 1);
    return r->head_request_ ? 1 : 0;  // 1: no body follows
}

int ResponseParser::on_body(http_parser* p, const char* at, std::size_t n) {
    ResponseParser* r = self(p);
    r->piece_ = {at, n};
    r->pending_ = Event::body;
    http_parser_pause(p, 1);
    return 0;
}

int ResponseParser::on_message_complete(http_parser* p) {
    ResponseParser* r = self(p);
    r->keep_alive_ = http_should_keep_alive(p) != 0;
    r->pending_ = Event::end;
    http_parser_pause(p, 1);
    return 0;
}

// One http_parser_execute over the bytes (none: the end of input). True when
// it settled the answer: a callback paused the parser at an event
// (pending_), or the input is malformed (error_).
bool ResponseParser::execute(const char* data, std::size_t len, std::size_t* parsed, Event* ev) {
    pending_ = Event::need_more;
    *parsed = http_parser_execute(&parser_, &kSettings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&parser_);
    if (e == HPE_PAUSED) {
        http_parser_pause(&parser_, 0);
        *ev = pending_;
        return true;
    }
    if (e != HPE_OK) {
        error_ = http_errno_description(e);
        *ev = Event::error;
        return true;
    }
    return false;
}

ResponseParser::Event ResponseParser::feed(const char* data, std::size_t len, std::size_t* consumed) {
    *consumed = 0;
    if (len == 0) return Event::need_more;
    std::size_t n = 0;
    Event ev;
    if (execute(data, len, &n, &ev)) {
        if (ev != Event::error) *consumed = n;
        return ev;
    }
    *consumed = n;
    return Event::need_more;
}

ResponseParser::Event ResponseParser::finish() {
    std::size_t n = 0;
    Event ev;
    if (execute(nullptr, 0, &n, &ev)) return ev;
    return started_ ? Event::error : Event::need_more;
}

}  // namespace tendril::http
