// BaseHTTPRequestHandler (see handler.hpp for the contract).
#include "tendril/http/handler.hpp"

#include "tendril/core/log.hpp"
#include "tendril/http/date_cache.hpp"
#include "tendril/http/server.hpp"
#include "tendril/http/status.hpp"
#include "tendril/sched/scheduler.hpp"

#include <unistd.h>

#include <charconv>
#include <cstring>

namespace tendril::http {

namespace {

constexpr std::string_view kDefaultErrorFormat =
    "<!DOCTYPE HTML>\n"
    "<html lang=\"en\">\n"
    "    <head>\n"
    "        <meta charset=\"utf-8\">\n"
    "        <title>Error response</title>\n"
    "    </head>\n"
    "    <body>\n"
    "        <h1>Error response</h1>\n"
    "        <p>Error code: {code}</p>\n"
    "        <p>Message: {message}.</p>\n"
    "        <p>Error code explanation: {code} - {explain}.</p>\n"
    "    </body>\n"
    "</html>\n";

constexpr std::size_t kReadSize = 4096;        // at least this much room per read
constexpr std::size_t kFlushAt = 64 * 1024;    // buffered response bytes before a write
constexpr std::size_t kDirectWrite = 16 * 1024;  // larger body writes skip the buffer

// Python's send_error escapes with html.escape(quote=False).
std::string html_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        default: out += c;
        }
    }
    return out;
}

void append_number(std::string& s, unsigned long long v) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    s.append(buf, end);
}

void append_number(ByteBuffer& b, unsigned long long v, int base = 10) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, base);
    b.append(buf, static_cast<std::size_t>(end - buf));
}


}  // namespace

// --- rfile / wfile --------------------------------------------------------------

std::string BodyReader::read(std::size_t n) {
    std::string out;
    while (out.size() < n) {
        std::string_view piece = h_->piece_.empty() ? h_->body_next() : h_->piece_;
        if (piece.empty()) break;
        std::size_t take = std::min(n - out.size(), piece.size());
        out.append(piece.data(), take);
        h_->piece_ = piece.substr(take);
    }
    return out;
}

std::size_t BodyReader::read(void* buf, std::size_t n) { return h_->body_read(buf, n); }

std::string_view BodyReader::read_chunk() {
    std::string_view piece = h_->piece_.empty() ? h_->body_next() : h_->piece_;
    h_->piece_ = {};
    return piece;
}

bool BodyReader::at_end() {
    if (!h_->piece_.empty()) return false;
    h_->piece_ = h_->body_next();
    return h_->piece_.empty();
}

void BodyWriter::write(std::string_view data) { h_->write_body(data); }

void BodyWriter::flush() {
    if (h_->phase_ == BaseHTTPRequestHandler::Phase::status_line) h_->end_headers();
    h_->flush_output();
}

// --- set-up -------------------------------------------------------------------------

Deadline BaseHTTPRequestHandler::after(Duration d) const {
    // The loop's clock: timeouts here are seconds long, and reading the
    // clock for each of them is measurable at 100k requests a second.
    return sched_ ? sched_->deadline_after(d) : Deadline::after(d);
}

BaseHTTPRequestHandler::BaseHTTPRequestHandler() : error_message_format(kDefaultErrorFormat) {
    rfile.h_ = this;
    wfile.h_ = this;
}

BaseHTTPRequestHandler::~BaseHTTPRequestHandler() = default;

void BaseHTTPRequestHandler::attach(Socket* sock, const SocketAddress& peer, BaseHTTPServer* srv,
                                    const ServerConfig* config, BodyPolicy policy) {
    sock_ = sock;
    client_address = peer;
    server = srv;
    config_ = config;
    policy_ = policy;
    parser_.set_limits(config->limits);
    sched_ = Scheduler::current();
}

Request BaseHTTPRequestHandler::request() const {
    Request r;
    r.method = command;
    r.target = path;
    r.version_major = 1;
    r.version_minor = version_minor_;
    r.headers = headers;
    r.body = body_;
    return r;
}

// --- the request loop ---------------------------------------------------------------

void BaseHTTPRequestHandler::handle() {
    close_connection = true;
    handle_one_request();
    while (!close_connection) handle_one_request();
    if (linger_) linger_close();
}

void BaseHTTPRequestHandler::linger_close() {
    // After an error answer the client may still be sending (a body we
    // refused, the rest of a huge header). Closing now would reset the
    // connection and could destroy our answer before it is read (RFC 9112
    // 9.6): stop writing, then read and drop input for a moment first.
    if (!sock_->is_open() || sock_->shutdown_write() != Status::ok) return;
    Deadline d = Deadline::after(std::chrono::seconds(1));
    char buf[4096];
    std::size_t dropped = 0;
    while (dropped < 256 * 1024) {
        IoResult r = sock_->read_some(buf, sizeof buf, d);
        if (!r) break;
        dropped += r.n;
    }
}

bool BaseHTTPRequestHandler::read_more(Deadline deadline, IoResult* result) {
    char* p = in_.prepare(kReadSize);
    *result = sock_->read_some(p, in_.writable(), deadline);
    if (result->ok()) in_.commit(result->n);
    return result->ok();
}

BaseHTTPRequestHandler::Head BaseHTTPRequestHandler::read_head() {
    parser_.reset();
    Deadline idle_deadline = after(config_->idle_timeout);
    Deadline head_deadline;
    if (!in_.empty()) head_deadline = after(config_->header_timeout);
    for (;;) {
        if (!in_.empty()) {
            std::size_t used = 0;
            auto ev = parser_.feed(in_.data(), in_.size(), &used);
            in_.consume(used);
            if (ev == RequestParser::Event::head) return Head::request;
            if (ev == RequestParser::Event::error) return Head::error;
        }
        // Before waiting for more input, send the responses already made
        // (pipelined requests are answered in one write when possible).
        flush_output();
        // The parser holds back a method until its end has arrived, so it
        // has not "started" on the first bytes; they count all the same, or
        // a client that stops inside the method gets the idle timeout and a
        // silent close instead of the header timeout's 408.
        bool started = parser_.started() || !in_.empty();
        if (!started) {
            in_.release_if_empty();  // an idle connection holds no buffer
            if (server && server->stopping()) return Head::closed;
            idle_ = true;
        }
        IoResult r;
        bool got = read_more(started ? head_deadline : idle_deadline, &r);
        idle_ = false;
        if (!got) {
            if (r.status == Status::timeout && started) return Head::timeout;
            return Head::closed;  // EOF, idle timeout, reset, cancelled
        }
        if (head_deadline.is_never()) head_deadline = after(config_->header_timeout);
    }
}

void BaseHTTPRequestHandler::begin_request() {
    Request& req = parser_.request();
    command.assign(req.method);
    path.swap(req.target);
    http11_ = req.version_major == 1 && req.version_minor >= 1;
    version_minor_ = req.version_minor;
    request_version.assign(http11_ ? "HTTP/1.1" : "HTTP/1.0");
    if (req.version_major == 1 && req.version_minor > 1) {
        request_version.assign("HTTP/1.");
        append_number(request_version, static_cast<unsigned>(req.version_minor));
    }
    requestline.assign(command);
    requestline += ' ';
    requestline += path;
    requestline += ' ';
    requestline += request_version;
    headers.swap(req.headers);
    body_done_ = false;
    // Nothing buffered behind the head (the usual case): hold no read buffer
    // while the handler runs, which may be for minutes (a comet waiter). The
    // head's last byte is still unconsumed (http-parser leaves it when
    // paused); keep the buffer if anything else follows.
    if (in_.size() <= 1 && !parser_.has_body()) finish_head_now();
    close_connection = !(protocol_version == "HTTP/1.1" && parser_.keep_alive());
    head_ = command == "HEAD";
    phase_ = Phase::none;
    body_mode_ = BodyMode::none;
    status_ = 0;
    response_start_ = out_.size();
    sent_length_ = sent_encoding_ = sent_connection_ = false;
    continue_sent_ = refused_body_ = false;
    response_flushed_ = interim_ = write_failed_ = false;
    body_.clear();
    body_pos_ = 0;
    piece_ = {};
}

void BaseHTTPRequestHandler::finish_head_now() {
    // A request without a body ends right after its head: consume that end
    // now, so the read buffer can be given back before the handler runs.
    std::size_t used = 0;
    auto ev = parser_.feed(in_.data(), in_.size(), &used);
    in_.consume(used);
    if (ev == RequestParser::Event::end) body_done_ = true;
    in_.release_if_empty();
}

std::string_view BaseHTTPRequestHandler::body_next() {
    if (body_done_) return {};
    // 100 Continue only makes sense before any of the final response left.
    // Never to an HTTP/1.0 client: it cannot know a 1xx (RFC 9110 10.1.1).
    if (!continue_sent_ && http11_ && parser_.expects_continue() && parser_.has_body() && !response_flushed_) {
        continue_sent_ = true;
        if (!handle_expect_100()) {
            refused_body_ = body_done_ = true;
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
                body_done_ = true;
                return {};
            }
            if (ev == RequestParser::Event::error) {
                body_done_ = true;
                close_connection = true;
                throw HttpError(parser_.error_status(), std::string(parser_.error_message()));
            }
        }
        IoResult r;
        if (!read_more(after(config_->body_timeout), &r)) {
            body_done_ = true;
            close_connection = true;
            Status st = r.status == Status::ok ? Status::eof : r.status;
            throw IoError(st, r.error, "reading the request body: " + describe(st, r.error));
        }
    }
}

std::size_t BaseHTTPRequestHandler::body_read(void* buf, std::size_t n) {
    if (piece_.empty()) piece_ = body_next();
    std::size_t take = std::min(n, piece_.size());
    std::memcpy(buf, piece_.data(), take);
    piece_.remove_prefix(take);
    return take;
}

bool BaseHTTPRequestHandler::read_buffered_body() {
    auto cl = parser_.content_length();
    if (cl && *cl > policy_.max_size) {
        // Refused before a byte of it is read (and before any 100 Continue).
        refused_body_ = body_done_ = linger_ = true;
        send_error(413, "Request Entity Too Large",
                   "The body is " + std::to_string(*cl) + " bytes; the limit is " +
                       std::to_string(policy_.max_size));
        return false;
    }
    for (;;) {
        std::string_view p = body_next();
        if (p.empty()) break;
        if (body_.size() + p.size() > policy_.max_size) {
            refused_body_ = body_done_ = linger_ = true;
            send_error(413, "Request Entity Too Large",
                       "The body exceeds the limit of " + std::to_string(policy_.max_size) + " bytes");
            return false;
        }
        body_.append(p);
    }
    return !refused_body_;
}

void BaseHTTPRequestHandler::dispatch() {
    const std::string& c = command;
    if (c == "GET") do_GET();
    else if (c == "HEAD") do_HEAD();
    else if (c == "POST") do_POST();
    else if (c == "PUT") do_PUT();
    else if (c == "DELETE") do_DELETE();
    else if (c == "PATCH") do_PATCH();
    else if (c == "OPTIONS") do_OPTIONS();
    else do_method();
}

bool BaseHTTPRequestHandler::drain_body() {
    if (body_done_) return !refused_body_;
    // The client waits for 100 Continue before it sends the body: it never
    // got one, so what follows on this connection is unknowable.
    if (http11_ && parser_.expects_continue() && parser_.has_body() && !continue_sent_) return false;
    std::size_t drained = piece_.size();
    piece_ = {};
    while (!body_done_) {
        drained += body_next().size();
        if (drained > config_->drain_limit) {
            linger_ = true;  // the rest is still coming: close gently
            return false;
        }
    }
    return true;
}

bool BaseHTTPRequestHandler::handle_one_request() {
    Head head;
    try {
        head = read_head();
    } catch (const IoError&) {  // a pipelined response could not be written
        close_connection = true;
        return false;
    }
    if (head != Head::request) {
        close_connection = true;
        if (head == Head::closed) return false;
        // Describe what we got for the log line.
        Request& req = parser_.request();
        command = req.method;
        path = req.target;
        request_version.clear();
        requestline.assign(parser_.raw_request_line());  // as Python logs it
        linger_ = true;
        head_ = false;
        phase_ = Phase::none;
        response_start_ = out_.size();
        if (head == Head::timeout) send_error(408, "Request Timeout");
        else send_error(parser_.error_status(), std::string(parser_.error_message()));
        try {
            flush_output();
        } catch (const IoError&) {
        }
        return false;
    }
    begin_request();

    int failure = 0;  // 1: HttpError, 2: I/O, 3: anything else, 4: abort_connection()
    int error_status = 0;
    Status io_status = Status::ok;
    std::string what;
    try {
        bool go_on = true;
        if (policy_.length_required && parser_.chunked()) {
            refused_body_ = body_done_ = linger_ = true;
            send_error(411, "Length Required", "This resource needs a Content-Length");
            go_on = false;
        }
        if (go_on && policy_.mode == BodyPolicy::Mode::buffered) go_on = read_buffered_body();
        if (go_on) dispatch();
        finish_response();
        if (!drain_body()) close_connection = true;
    } catch (const AbortConnection&) {
        failure = 4;
    } catch (const HttpError& e) {
        failure = 1;
        error_status = e.status();
        what = e.what();
    } catch (const IoError& e) {
        failure = 2;
        io_status = e.status();
        what = e.what();
    } catch (const std::exception& e) {
        failure = 3;
        what = e.what();
    } catch (...) {
        failure = 3;
        what = "an exception not derived from std::exception";
    }
    // Out of the catch blocks before anything that may block.
    if (failure) {
        close_connection = true;
        body_done_ = true;
        try {
            if (failure == 3) log_error("exception in do_" + command + "(): " + what);
            if (!headers_sent()) {
                if (phase_ == Phase::status_line) out_.truncate(response_start_);
                phase_ = Phase::none;
                if (failure == 1) send_error(error_status, what);
                else if (failure == 2 && io_status == Status::timeout) send_error(408, "Request Timeout");
                else if (failure == 3) send_error(500);
            }
        } catch (const std::exception&) {
        }
        // A write that failed: the client is gone or stuck, so drop what is
        // pending. A read that failed (the body stopped, or timed out) keeps
        // the answers to earlier pipelined requests and the 408 made above.
        if (failure == 2 && write_failed_) out_.clear();
        else if (failure == 2 && io_status != Status::timeout) out_.truncate(response_start_);
        if (failure == 1 || (failure == 2 && io_status == Status::timeout && !write_failed_)) linger_ = true;
    }
    if (close_connection || in_.empty()) {
        try {
            flush_output();
        } catch (const IoError&) {
            close_connection = true;
        }
    }
    return !close_connection;
}

void BaseHTTPRequestHandler::finish_response() {
    if (phase_ == Phase::none) {
        log_error("do_" + command + "() sent no response");
        send_error(500, "Internal Server Error", "The handler sent no response");
    }
    if (phase_ == Phase::status_line) end_headers();
    switch (body_mode_) {
    case BodyMode::chunked: out_.append("0\r\n\r\n", 5); break;
    case BodyMode::fixed:
        if (fixed_left_ > 0) {
            log_error("response body " + std::to_string(fixed_left_) + " bytes short of its Content-Length");
            close_connection = true;
        }
        break;
    case BodyMode::until_close: close_connection = true; break;
    default: break;
    }
    body_mode_ = BodyMode::none;
}

// --- responding -----------------------------------------------------------------

void BaseHTTPRequestHandler::send_response(int code, std::string_view message) {
    log_request(code);
    send_response_only(code, message);
    send_header("Server", version_string());
    send_header("Date", http_date_now());
}

void BaseHTTPRequestHandler::send_response_only(int code, std::string_view message) {
    if (message.empty()) message = reason_phrase(code);
    if (!valid_field_value(message)) throw std::invalid_argument("send_response: control characters in the reason phrase");
    if (code < 200) {
        // An interim response (100 Continue) is built aside and written
        // ahead of anything buffered: it must not disturb the final one.
        interim_ = true;
        interim_bytes_.assign(protocol_version);
        interim_bytes_ += ' ';
        append_number(interim_bytes_, static_cast<unsigned>(code));
        interim_bytes_ += ' ';
        interim_bytes_ += message;
        interim_bytes_ += "\r\n";
        return;
    }
    if (phase_ == Phase::none) response_start_ = out_.size();
    status_ = code;
    phase_ = Phase::status_line;
    out_.append(protocol_version);
    out_.append(" ", 1);
    append_number(out_, static_cast<unsigned>(code));
    out_.append(" ", 1);
    out_.append(message);
    out_.append("\r\n", 2);
}

void BaseHTTPRequestHandler::send_header(std::string_view keyword, std::string_view value) {
    if (!valid_field_name(keyword) || !valid_field_value(value))
        throw std::invalid_argument("send_header: not a valid header name or value (control characters, "
                                    "CR/LF: response splitting)");
    if (interim_) {
        interim_bytes_.append(keyword);
        interim_bytes_ += ": ";
        interim_bytes_.append(value);
        interim_bytes_ += "\r\n";
        return;
    }
    if (phase_ != Phase::status_line) throw std::logic_error("send_header() outside a response's headers");
    out_.append(keyword);
    out_.append(": ", 2);
    out_.append(value);
    out_.append("\r\n", 2);
    if (iequals(keyword, "Content-Length")) {
        std::uint64_t n = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || end != value.data() + value.size())
            throw std::invalid_argument("send_header: bad Content-Length");
        sent_length_ = true;
        fixed_left_ = n;
    } else if (iequals(keyword, "Transfer-Encoding")) {
        sent_encoding_ = true;
    } else if (iequals(keyword, "Connection")) {
        sent_connection_ = true;
        if (iequals(value, "close")) close_connection = true;
        else if (iequals(value, "keep-alive")) close_connection = false;
    }
}

void BaseHTTPRequestHandler::end_headers() {
    if (interim_) {
        interim_ = false;
        interim_bytes_ += "\r\n";
        // Answers to earlier pipelined requests go first; this request's own
        // final response (if begun) stays behind the interim one.
        if (response_start_ > 0) {
            IoResult r = sock_->write_all(out_.data(), response_start_, after(config_->write_timeout));
            if (!r) {
                write_failed_ = true;
                throw IoError(r.status, r.error, "writing the response: " + describe(r.status, r.error));
            }
            out_.consume(response_start_);
            response_start_ = 0;
        }
        IoResult r = sock_->write_all(interim_bytes_, after(config_->write_timeout));
        if (!r) throw IoError(r.status, r.error, "writing an interim response: " + describe(r.status, r.error));
        return;
    }
    if (phase_ != Phase::status_line) throw std::logic_error("end_headers() without send_response()");
    if (head_ || !status_has_body(status_)) {
        body_mode_ = BodyMode::none;
    } else if (sent_encoding_) {
        body_mode_ = BodyMode::raw;
    } else if (sent_length_) {
        body_mode_ = BodyMode::fixed;
    } else if (http11_ && protocol_version == "HTTP/1.1") {
        out_.append("Transfer-Encoding: chunked\r\n");
        body_mode_ = BodyMode::chunked;
    } else {
        body_mode_ = BodyMode::until_close;  // HTTP/1.0: the end of the body is the close
        close_connection = true;
    }
    if (server && server->stopping()) close_connection = true;
    if (!sent_connection_) {
        if (close_connection) out_.append("Connection: close\r\n");
        else if (!http11_) out_.append("Connection: keep-alive\r\n");
    }
    out_.append("\r\n", 2);
    phase_ = Phase::headers_ended;
}

void BaseHTTPRequestHandler::flush_headers() { flush_output(); }

void BaseHTTPRequestHandler::write_body(std::string_view data) {
    if (phase_ == Phase::none) send_response(200);
    if (phase_ == Phase::status_line) end_headers();
    switch (body_mode_) {
    case BodyMode::none: return;  // HEAD, 204, 304: no body goes out
    case BodyMode::fixed:
        if (data.size() > fixed_left_) {
            std::string_view allowed = data.substr(0, fixed_left_);
            fixed_left_ = 0;
            if (!allowed.empty()) out_.append(allowed);
            close_connection = true;
            throw std::length_error("the response body is longer than its Content-Length");
        }
        fixed_left_ -= data.size();
        break;
    case BodyMode::chunked:
        if (data.empty()) return;  // an empty chunk would end the body
        append_number(out_, data.size(), 16);
        out_.append("\r\n", 2);
        break;
    default: break;
    }
    if (data.size() >= kDirectWrite) {
        // Large bodies go out with the buffered bytes in one gathered write.
        iovec iov[2] = {{out_.data(), out_.size()}, {const_cast<char*>(data.data()), data.size()}};
        IoResult r = sock_->writev(iov, 2, after(config_->write_timeout));
        out_.clear();
        write_failed_ = !r;
        if (!r) throw IoError(r.status, r.error, "writing the response: " + describe(r.status, r.error));
        response_start_ = 0;
        response_flushed_ = true;
    } else {
        out_.append(data);
    }
    if (body_mode_ == BodyMode::chunked) out_.append("\r\n", 2);
    if (out_.size() >= kFlushAt) flush_output();
}

void BaseHTTPRequestHandler::flush_output() {
    if (out_.empty()) {
        out_.release();
        return;
    }
    IoResult r = sock_->write_all(out_.data(), out_.size(), after(config_->write_timeout));
    out_.consume(r.n);
    if (!r) {
        out_.clear();
        write_failed_ = true;
        throw IoError(r.status, r.error, "writing the response: " + describe(r.status, r.error));
    }
    out_.release();
    response_start_ = 0;
    if (phase_ != Phase::none) response_flushed_ = true;
}

void BaseHTTPRequestHandler::send_error(int code, std::string_view message, std::string_view explain) {
    std::string short_msg = reason_phrase(code), long_msg = status_explanation(code);
    if (short_msg.empty()) short_msg = "???";
    if (long_msg.empty()) long_msg = "???";
    std::string msg(message.empty() ? std::string_view(short_msg) : message);
    std::string exp(explain.empty() ? std::string_view(long_msg) : explain);
    log_error("code " + std::to_string(code) + ", message " + msg);
    if (headers_sent()) {  // too late for an error page: end the connection instead
        close_connection = true;
        return;
    }
    if (phase_ == Phase::status_line) out_.truncate(response_start_);
    phase_ = Phase::none;
    // The reason phrase must be a valid field text whatever the message says.
    std::string phrase = msg;
    for (char& c : phrase)
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) c = ' ';
    send_response(code, phrase);
    send_header("Connection", "close");
    std::string body;
    if (status_has_body(code)) {
        std::string_view f = error_message_format;
        std::string code_s = std::to_string(code), msg_e = html_escape(msg), exp_e = html_escape(exp);
        while (!f.empty()) {
            auto at = f.find('{');
            body.append(f.substr(0, at));
            if (at == std::string_view::npos) break;
            f.remove_prefix(at);
            if (f.substr(0, 6) == "{code}") body += code_s, f.remove_prefix(6);
            else if (f.substr(0, 9) == "{message}") body += msg_e, f.remove_prefix(9);
            else if (f.substr(0, 9) == "{explain}") body += exp_e, f.remove_prefix(9);
            else body += '{', f.remove_prefix(1);
        }
        send_header("Content-Type", error_content_type);
        send_header("Content-Length", std::to_string(body.size()));
    }
    end_headers();
    if (!body.empty()) write_body(body);
}

void BaseHTTPRequestHandler::send(const Response& response) {
    send_response(response.status, response.reason);
    bool framed = false;
    for (auto f : response.headers) {
        send_header(f.name, f.value);
        framed |= iequals(f.name, "Content-Length") || iequals(f.name, "Transfer-Encoding");
    }
    if (!framed && status_has_body(response.status))
        send_header("Content-Length", std::to_string(response.body.size()));
    end_headers();
    write_body(response.body);
}

void BaseHTTPRequestHandler::send_file(int file_fd, std::uint64_t offset, std::uint64_t count, std::size_t slice) {
    if (phase_ == Phase::none) send_response(200);
    if (phase_ == Phase::status_line) end_headers();
    if (body_mode_ == BodyMode::none || count == 0) return;
    if (body_mode_ == BodyMode::fixed) {
        if (count > fixed_left_) throw std::length_error("the response body is longer than its Content-Length");
        fixed_left_ -= count;
    }
    if (body_mode_ == BodyMode::chunked) {
        append_number(out_, count, 16);
        out_.append("\r\n", 2);
    }
    flush_output();  // headers first
    response_flushed_ = true;
    std::uint64_t sent = 0;
    while (sent < count) {
        std::uint64_t n = count - sent;
        if (slice && n > slice) n = slice;
        IoResult r = sock_->sendfile(file_fd, static_cast<off_t>(offset + sent), static_cast<std::size_t>(n),
                                     after(config_->write_timeout));
        sent += r.n;
        write_failed_ = !r && r.status != Status::eof;
        if (r.status == Status::eof) {
            close_connection = true;
            throw std::runtime_error("the file shrank while it was being sent");
        }
        if (!r) throw IoError(r.status, r.error, "sending a file: " + describe(r.status, r.error));
        if (slice && sent < count) yield();  // let the other downloads move
    }
    if (body_mode_ == BodyMode::chunked) out_.append("\r\n", 2);
}

bool BaseHTTPRequestHandler::handle_expect_100() {
    send_response_only(100);
    end_headers();
    return true;
}

// --- the default do_X: as if Python found no such method --------------------------

void BaseHTTPRequestHandler::do_GET() { send_error(501, "Unsupported method ('" + command + "')"); }
void BaseHTTPRequestHandler::do_HEAD() { do_GET(); }  // head_ keeps the body out
void BaseHTTPRequestHandler::do_POST() { send_error(501, "Unsupported method ('" + command + "')"); }
void BaseHTTPRequestHandler::do_PUT() { send_error(501, "Unsupported method ('" + command + "')"); }
void BaseHTTPRequestHandler::do_DELETE() { send_error(501, "Unsupported method ('" + command + "')"); }
void BaseHTTPRequestHandler::do_PATCH() { send_error(501, "Unsupported method ('" + command + "')"); }
void BaseHTTPRequestHandler::do_OPTIONS() { send_error(501, "Unsupported method ('" + command + "')"); }
void BaseHTTPRequestHandler::do_method() { send_error(501, "Unsupported method ('" + command + "')"); }

// --- logging ------------------------------------------------------------------------

void BaseHTTPRequestHandler::log_request(int code, long long size) {
    if (config_ && !config_->access_log) return;
    std::string m;
    m.reserve(requestline.size() + 16);
    m += '"';
    m += requestline;
    m += "\" ";
    if (code) append_number(m, static_cast<unsigned>(code));
    else m += '-';
    m += ' ';
    if (size >= 0) append_number(m, static_cast<unsigned long long>(size));
    else m += '-';
    log_message(m);
}

void BaseHTTPRequestHandler::log_error(std::string_view message) { log_message(message); }

void BaseHTTPRequestHandler::log_message(std::string_view message) {
    // One write per line, so lines from different fibers never interleave;
    // control characters escaped as Python does (log injection).
    std::string line = address_string();
    line += " - - [";
    line += log_date_time_now();
    line += "] ";
    static const char* hex = "0123456789abcdef";
    for (unsigned char c : message) {
        if (c < 0x20 || (c >= 0x7f && c < 0xa0)) {
            line += "\\x";
            line += hex[c >> 4];
            line += hex[c & 15];
        } else if (c == '\\') {
            line += "\\\\";
        } else {
            line += static_cast<char>(c);
        }
    }
    line += '\n';
    write_log_line(line);
}

void BaseHTTPRequestHandler::write_log_line(std::string_view line) {
    // Never a blocking write(2) on the scheduler thread: a slow stderr
    // reader would stall every connection (see sched/log_writer.hpp).
    log_write(line);
}

std::string BaseHTTPRequestHandler::version_string() const {
    std::string s(server_version);
    s += ' ';
    s += sys_version;
    return s;
}

std::string BaseHTTPRequestHandler::date_time_string(std::time_t t) const {
    return t ? http_date(t) : std::string(http_date_now());
}

std::string BaseHTTPRequestHandler::log_date_time_string() const { return std::string(log_date_time_now()); }

std::string BaseHTTPRequestHandler::address_string() const { return client_address.host(); }

}  // namespace tendril::http
