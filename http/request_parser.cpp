// RequestParser (see request_parser.hpp for the rules it enforces).
#include "tendril/http/request_parser.hpp"

#include "tendril/http/detail/byte_class.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <mutex>

namespace tendril::http {

namespace {

// http_method_str()'s names with their lengths, so that taking one is a
// copy and not a strlen (it showed in profiles of /plaintext).
std::string_view method_name(unsigned method) {
    static const auto names = [] {
        std::array<std::string_view, 64> a{};
        for (unsigned i = 0; i < a.size(); ++i) a[i] = http_method_str(static_cast<http_method>(i));
        return a;
    }();
    return method < names.size() ? names[method] : http_method_str(static_cast<http_method>(method));
}

inline bool is_tchar(unsigned char c) { return is_token_char(c); }

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

RequestParser* self(http_parser* p) { return static_cast<RequestParser*>(p->data); }

bool known_method(std::string_view m) {
#define TENDRIL_METHOD(num, name, string) \
    if (m == #string) return true;
    HTTP_METHOD_MAP(TENDRIL_METHOD)
#undef TENDRIL_METHOD
    return false;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// The bytes a reg-name may hold besides %XX (RFC 3986 3.2.2): unreserved
// and sub-delims.
constexpr detail::ByteClass kHostName("-._~!$&'()*+,;=");

// RFC 9112 3.2: Host = uri-host [ ":" port ] (RFC 3986), possibly empty.
// A front end and this server could otherwise route one request to two
// different virtual hosts.
bool valid_host(std::string_view h) {
    std::string_view port;
    if (!h.empty() && h.front() == '[') {
        auto close = h.find(']');
        if (close == std::string_view::npos || close == 1) return false;
        for (char c : h.substr(1, close - 1))
            if (!is_hex(c) && c != ':' && c != '.' && c != 'v' && c != 'V') return false;
        std::string_view rest = h.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') return false;
        port = rest.empty() ? rest : rest.substr(1);
    } else {
        auto colon = h.find(':');
        std::string_view name = h.substr(0, colon);
        port = colon == std::string_view::npos ? std::string_view() : h.substr(colon + 1);  // may be empty
        for (std::size_t i = 0; i < name.size(); ++i) {
            auto c = static_cast<unsigned char>(name[i]);
            if (c == '%') {
                if (i + 2 >= name.size() || !is_hex(name[i + 1]) || !is_hex(name[i + 2])) return false;
                i += 2;
            } else if (!kHostName(c)) {
                return false;
            }
        }
    }
    for (char c : port)
        if (!is_digit(c)) return false;
    return true;
}

}  // namespace

const http_parser_settings RequestParser::kSettings = [] {
    http_parser_settings s;
    http_parser_settings_init(&s);
    s.on_message_begin = &RequestParser::on_message_begin;
    s.on_url = &RequestParser::on_url;
    s.on_header_field = &RequestParser::on_header_field;
    s.on_header_value = &RequestParser::on_header_value;
    s.on_headers_complete = &RequestParser::on_headers_complete;
    s.on_body = &RequestParser::on_body;
    s.on_message_complete = &RequestParser::on_message_complete;
    return s;
}();

RequestParser::RequestParser(ParserLimits limits) : limits_(limits) {
    // http-parser's own cap is global and counts the request line too; ours
    // (per parser, with the right status) are the real bounds.
    static std::once_flag once;
    std::call_once(once, [] { http_parser_set_max_header_size(4u << 20); });
    reset();
}

void RequestParser::reset() {
    http_parser_init(&parser_, HTTP_REQUEST);
    parser_.data = this;
    req_.method.clear();
    req_.target.clear();
    req_.headers.clear();
    req_.body.clear();
    req_.version_major = req_.version_minor = 1;
    piece_ = {};
    pending_ = Event::need_more;
    header_bytes_ = fed_before_ = 0;
    started_ = head_done_ = in_value_ = value_hit_end_ = field_started_ = false;
    keep_alive_ = chunked_ = expect_continue_ = upgrade_ = false;
    content_length_.reset();
    raw_line_.clear();
    raw_line_done_ = raw_line_too_long_ = false;
    chunk_framing_.reset();
    expect_head_lf_ = false;
    error_status_ = 0;
    error_message_ = "";
}

int RequestParser::fail(int status, const char* message) {
    if (!error_status_) {
        error_status_ = status;
        error_message_ = message;
    }
    return 1;  // non-zero stops http-parser with HPE_CB_*
}

int RequestParser::on_message_begin(http_parser* p) {
    self(p)->started_ = true;
    return 0;
}

int RequestParser::on_url(http_parser* p, const char* at, std::size_t n) {
    RequestParser* r = self(p);
    if (r->req_.target.size() + n > r->limits_.max_request_line) return r->fail(414, "URI Too Long");
    r->req_.target.append(at, n);
    return 0;
}

int RequestParser::on_header_field(http_parser* p, const char* at, std::size_t n) {
    RequestParser* r = self(p);
    r->header_bytes_ += n;
    if (r->header_bytes_ > r->limits_.max_header_bytes) return r->fail(431, "Request Header Fields Too Large");
    for (std::size_t i = 0; i < n; ++i)
        if (!is_tchar(static_cast<unsigned char>(at[i]))) return r->fail(400, "Bad header field name");
    bool new_field = r->in_value_ || !r->field_started_;
    r->field_started_ = true;
    r->in_value_ = false;
    if (r->head_done_) return 0;  // a chunked trailer: not part of the request's headers
    if (new_field) {
        if (r->req_.headers.size() >= r->limits_.max_headers) return r->fail(431, "Too many headers");
        r->req_.headers.begin_field();
    }
    r->req_.headers.append_name({at, n});
    return 0;
}

int RequestParser::on_header_value(http_parser* p, const char* at, std::size_t n) {
    RequestParser* r = self(p);
    // A second value piece that did not follow a buffer boundary is a folded
    // continuation line (obs-fold): RFC 9112 5.2 lets us reject it. Checked
    // before the size limit, so the answer does not depend on the split.
    if (r->in_value_ && !r->value_hit_end_) return r->fail(400, "Obsolete line folding");
    r->header_bytes_ += n;
    if (r->header_bytes_ > r->limits_.max_header_bytes) return r->fail(431, "Request Header Fields Too Large");
    r->value_hit_end_ = at + n == r->feed_end_;
    r->in_value_ = true;
    if (r->head_done_) return 0;
    r->req_.headers.append_value({at, n});
    return 0;
}

int RequestParser::check_head() {
    http_parser* p = &parser_;
    req_.version_major = p->http_major;
    req_.version_minor = p->http_minor;
    req_.method = method_name(p->method);
    if (p->http_major >= 2) return fail(505, "HTTP Version Not Supported");
    if (p->http_major == 0) return fail(400, "Bad request version (HTTP/0.9 is not served)");
    // A line past its limit is not kept, so neither the version check below
    // nor check_request_line() saw it. The target is within its limit here
    // (on_url answers 414 otherwise), so the excess is runs of spaces or a
    // malformed method or version: method, spaces and version fit in 64.
    if (raw_line_too_long_) return fail(400, "Bad request syntax");
    // http-parser reads any four bytes where "TTP/" belongs: insist on them.
    std::string_view line = raw_line_;
    char version[] = " HTTP/d.d";
    version[6] = static_cast<char>('0' + p->http_major);
    version[8] = static_cast<char>('0' + p->http_minor);
    if (line.size() < 9 || line.substr(line.size() - 9) != version)
        return fail(400, "Bad request version");
    // RFC 9112 3.2: "*" is for OPTIONS only, and no form carries a fragment.
    if (req_.target == "*" && p->method != HTTP_OPTIONS) return fail(400, "Bad request target");
    if (req_.target.find('#') != std::string::npos) return fail(400, "Bad request target (a fragment)");
    // One pass over the headers for the ones framing depends on.
    int chunked = 0, lengths = 0, hosts = 0;
    bool other = false, chunked_not_last = false;
    std::string_view length, host;
    for (Headers::Field f : req_.headers) {
        std::string_view v = f.value;
        switch (f.name.size()) {
        case 4:
            if (iequals(f.name, "Host")) ++hosts, host = trim(v);
            break;
        case 6:
            if (iequals(f.name, "Expect") && req_.headers.has_token("Expect", "100-continue")) expect_continue_ = true;
            break;
        case 14:
            if (iequals(f.name, "Content-Length")) ++lengths, length = trim(v);
            break;
        case 17:
            if (!iequals(f.name, "Transfer-Encoding")) break;
            // Transfer codings: we decode chunked and nothing else.
            while (!v.empty()) {
                auto comma = v.find(',');
                std::string_view coding = trim(v.substr(0, comma));
                if (iequals(coding, "chunked")) {
                    ++chunked;
                } else if (!coding.empty()) {
                    other = true;
                    if (chunked) chunked_not_last = true;
                }
                if (comma == std::string_view::npos) break;
                v.remove_prefix(comma + 1);
            }
            break;
        }
    }
    // RFC 9112 6.3: with chunked not last the body's end cannot be known,
    // so this is bad framing (400), not merely a coding we lack (501).
    if (chunked_not_last) return fail(400, "Transfer-Encoding: chunked is not the final coding");
    if (other) return fail(501, "Unsupported transfer coding");
    if (chunked > 1) return fail(400, "Bad Transfer-Encoding");
    if (chunked && p->http_major == 1 && p->http_minor == 0)
        return fail(400, "Transfer-Encoding in an HTTP/1.0 request");
    if (chunked && lengths) return fail(400, "Content-Length with Transfer-Encoding");
    chunked_ = chunked == 1;
    if (lengths > 1) return fail(400, "Duplicate Content-Length");
    if (lengths == 1) {
        std::uint64_t n = 0;
        auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), n);
        if (length.empty() || ec != std::errc() || end != length.data() + length.size())
            return fail(400, "Bad Content-Length");
        content_length_ = n;
    }
    // RFC 9110 9.3.6: a CONNECT request has no content, and http-parser ends
    // it at its head whatever the framing says. A body a front end would
    // forward as part of this request would be read here as the next
    // request (smuggling): refuse it.
    if (p->method == HTTP_CONNECT && (chunked_ || (content_length_ && *content_length_ > 0)))
        return fail(400, "CONNECT with a body");
    if (hosts > 1 || (hosts == 0 && p->http_major == 1 && p->http_minor >= 1))
        return fail(400, "HTTP/1.1 requires exactly one Host header");
    if (hosts == 1 && !valid_host(host)) return fail(400, "Bad Host header");
    keep_alive_ = http_should_keep_alive(p) != 0;
    upgrade_ = p->upgrade;
    return 0;
}

int RequestParser::on_headers_complete(http_parser* p) {
    RequestParser* r = self(p);
    if (r->check_head() != 0) return -1;  // -1: not 1 or 2, which mean "no body" here
    r->head_done_ = true;
    r->pending_ = Event::head;
    http_parser_pause(p, 1);
    return 0;
}

int RequestParser::on_body(http_parser* p, const char* at, std::size_t n) {
    RequestParser* r = self(p);
    r->piece_ = {at, n};
    r->pending_ = Event::body;
    http_parser_pause(p, 1);
    return 0;
}

int RequestParser::on_message_complete(http_parser* p) {
    RequestParser* r = self(p);
    r->pending_ = Event::end;
    http_parser_pause(p, 1);
    return 0;
}

void RequestParser::map_parser_error(const char* data, std::size_t len) {
    if (error_status_) return;  // one of our callbacks already chose
    switch (HTTP_PARSER_ERRNO(&parser_)) {
    case HPE_INVALID_METHOD: {
        // A well-formed but unknown method ("BREW /pot HTTP/1.1") is 501,
        // as in Python's server; binary garbage is a bad request.
        bool token = fed_before_ == 0 && len > 0;
        std::size_t i = 0;
        for (; token && i < len && data[i] != ' '; ++i)
            if (!is_tchar(static_cast<unsigned char>(data[i]))) token = false;
        if (token && i == 3 && std::string_view(data, 3) == "PRI") fail(505, "HTTP Version Not Supported");
        // Only a token followed by its space is a method; "GET\r\n" or
        // "GET\t/" is a request line of the wrong shape.
        else if (token && i < len && i > 0 && i < 32 && data[i] == ' ') fail(501, "Unsupported method");
        else fail(400, "Bad request syntax");
        break;
    }
    case HPE_HEADER_OVERFLOW: fail(431, "Request Header Fields Too Large"); break;
    case HPE_INVALID_TRANSFER_ENCODING: fail(501, "Unsupported transfer coding"); break;
    case HPE_UNEXPECTED_CONTENT_LENGTH: fail(400, "Conflicting Content-Length"); break;
    case HPE_INVALID_CONTENT_LENGTH: fail(400, "Bad Content-Length"); break;
    case HPE_INVALID_CHUNK_SIZE: fail(400, "Bad chunk size"); break;
    case HPE_INVALID_VERSION: fail(400, "Bad request version"); break;
    default: fail(400, "Bad request syntax"); break;
    }
}

int RequestParser::check_request_line() {
    // http-parser takes runs of spaces between the parts, and a line of two
    // parts as HTTP/0.9 whose headers it then waits for: the client gets
    // nothing until the header timeout. RFC 9112 3: method SP target SP
    // version, exactly. Lines http-parser refuses on its own (an unknown
    // method: 501; a target over the limit: 414) are left to it, so the
    // status does not depend on where the bytes were split.
    if (raw_line_too_long_) return 0;
    std::string_view line = raw_line_;
    // Method and version are a few bytes, scanned by hand (memchr's set-up
    // costs more than they do and showed in profiles); the target may be long.
    auto space_after = [line](std::size_t i) {
        while (i < line.size() && line[i] != ' ') ++i;
        return i;
    };
    std::size_t sp1 = space_after(0);
    if (sp1 == line.size() || !known_method(line.substr(0, sp1))) return 0;
    auto sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos) {
        if (line.size() - sp1 - 1 > limits_.max_request_line) return 0;
        return fail(400, "Bad request version (HTTP/0.9 is not served)");
    }
    if (sp2 - sp1 - 1 > limits_.max_request_line) return 0;
    if (sp2 == sp1 + 1 || sp2 + 1 == line.size() || space_after(sp2 + 1) != line.size())
        return fail(400, "Bad request syntax");
    return 0;
}

void RequestParser::capture_line(const char* data, std::size_t len) {
    while (len > 0 && !raw_line_done_) {
        if (raw_line_.empty()) {  // leading empty lines are skipped
            while (len > 0 && (*data == '\r' || *data == '\n')) ++data, --len;
            if (len == 0) return;
        }
        const char* nl = static_cast<const char*>(std::memchr(data, '\n', len));
        std::size_t n = nl ? static_cast<std::size_t>(nl - data) : len;
        // The limit is on the target (414); method and version get room on
        // top (saturating: a limit near SIZE_MAX means none).
        std::size_t limit = limits_.max_request_line;
        limit = limit > SIZE_MAX - 64 ? SIZE_MAX : limit + 64;
        if (raw_line_.size() + n > limit) raw_line_too_long_ = true;
        else raw_line_.append(data, n);
        if (!nl) return;
        if (!raw_line_.empty() && raw_line_.back() == '\r') raw_line_.pop_back();
        raw_line_done_ = true;
    }
}

RequestParser::Event RequestParser::feed(const char* data, std::size_t len, std::size_t* consumed) {
    *consumed = 0;
    if (error_status_) return Event::error;
    if (len == 0) return Event::need_more;
    if (!started_ && fed_before_ == 0) {
        // Hold the method until its end has arrived (nothing is consumed), so
        // that an unknown method is told from garbage however the bytes split.
        std::size_t i = 0;
        while (i < len && i < 32 && is_tchar(static_cast<unsigned char>(data[i]))) ++i;
        if (i == len && len < 32) return Event::need_more;
    }
    if (head_done_ && expect_head_lf_ && data[0] == '\n' && !has_body() && !upgrade_) {
        // The usual end of a request without a body: the head's last LF,
        // which http-parser left unconsumed when it paused. Nothing can
        // follow in this message, so the end is known without running the
        // parser again over one byte (a tenth of a small GET's parsing).
        // http-parser is left paused before that LF: reset(), which the
        // next message needs anyway, starts it afresh.
        expect_head_lf_ = false;
        *consumed = 1;
        fed_before_ += 1;
        pending_ = Event::end;
        return Event::end;
    }
    pending_ = Event::need_more;
    feed_end_ = data + len;
    // Before execute(): check_head() runs inside it and needs the line.
    if (!raw_line_done_) {
        capture_line(data, len);
        if (raw_line_done_ && check_request_line() != 0) return Event::error;
    }
    bool head_was_done = head_done_;
    std::size_t n = http_parser_execute(&parser_, &kSettings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&parser_);
    if ((e == HPE_OK || e == HPE_PAUSED) && !strict_check(data, n, len, head_was_done)) {
        fail(400, head_done_ && head_was_done ? "Bad chunked encoding" : "Bad line ending (a CR without LF)");
        return Event::error;
    }
    if (e == HPE_PAUSED) {
        http_parser_pause(&parser_, 0);
        *consumed = n;
        fed_before_ += n;
        return pending_;
    }
    if (e != HPE_OK) {
        map_parser_error(data, len);
        // A bad line ending earlier in the stream wins over what the parser
        // stopped at, as it would if the bytes had come in smaller pieces.
        bool bare_cr = !head_was_done && ((expect_head_lf_ && data[0] != '\n') ||
                                          !strict_check(data, std::min(n + 1, len), len, false));
        if (bare_cr) {
            error_status_ = 400;
            error_message_ = "Bad line ending (a CR without LF)";
        }
        return Event::error;
    }
    *consumed = n;
    fed_before_ += n;
    return Event::need_more;
}

bool RequestParser::strict_check(const char* data, std::size_t n, std::size_t len, bool head_was_done) {
    std::size_t i = 0;
    if (expect_head_lf_ && n > 0) {  // a CR ended the last piece, or the head's last LF
        if (data[0] != '\n') return false;
        expect_head_lf_ = false;
        i = 1;
    }
    if (!head_was_done) {
        // Head bytes: every CR followed by LF (looking past the consumed
        // bytes where need be: they are in the buffer). A CR last in the
        // buffer is checked against the next piece's first byte.
        while (i < n) {
            auto cr = static_cast<const char*>(std::memchr(data + i, '\r', n - i));
            if (!cr) break;
            std::size_t j = static_cast<std::size_t>(cr - data);
            if (j + 1 == len) {
                expect_head_lf_ = true;
                break;
            }
            if (data[j + 1] != '\n') return false;
            i = j + 1;
        }
        if (head_done_) {
            // http-parser ended the head on the byte after a CR (or on an LF)
            // and left that byte unconsumed: it is here, and must be an LF
            // before the request is handed out.
            if (n >= len || data[n] != '\n') return false;
            expect_head_lf_ = true;
        }
        return true;
    }
    if (chunked_ && i < n && !chunk_framing_.feed(data + i, n - i)) return false;
    if (chunked_ && pending_ == Event::end && !chunk_framing_.done()) return false;
    return true;
}

RequestParser::Event RequestParser::finish() {
    if (!started_) return Event::need_more;
    fail(400, "Incomplete request");
    return Event::error;
}

}  // namespace tendril::http
