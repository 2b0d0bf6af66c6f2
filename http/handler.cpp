// BaseHTTPRequestHandler's request loop (see handler.hpp for the contract):
// a request head is read, the handler's do_X() answers, and whatever goes
// wrong on the way is turned into an answer or an ended connection. The
// body, the response and the logging live in the files named for them.
#include "tendril/http/handler.hpp"

#include "tendril/http/detail/append_number.hpp"
#include "tendril/http/server.hpp"
#include "tendril/sched/scheduler.hpp"

namespace tendril::http {

namespace {

constexpr std::size_t kReadSize = 4096;  // at least this much room per read

// How a request ended, when not normally; each is answered differently.
enum class Failure : std::uint8_t {
    none,
    http_error,        // an HttpError: its status and message are the answer
    io_error,          // the socket failed, or the body stopped coming
    exception,         // anything else the handler threw: a 500
    aborted,           // abort_connection(): no answer at all
};

}  // namespace

Deadline BaseHTTPRequestHandler::after(Duration d) const {
    // The loop's clock: timeouts here are seconds long, and reading the
    // clock for each of them is measurable at 100k requests a second.
    return sched_ ? sched_->deadline_after(d) : Deadline::after(d);
}

BaseHTTPRequestHandler::BaseHTTPRequestHandler() : error_message_format(default_error_message_format) {
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
    r.version_minor = state_.version_minor;
    r.headers = headers;
    r.body = body_;
    return r;
}

void BaseHTTPRequestHandler::handle() {
    close_connection = true;
    handle_one_request();
    while (!close_connection) handle_one_request();
    if (linger_) linger_close();
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
    // First, before finish_head_now() may learn that the body is done.
    state_ = {};
    state_.response_start = out_.size();
    state_.body_done = false;
    Request& req = parser_.request();
    command.assign(req.method);
    path.swap(req.target);
    state_.http11 = req.version_major == 1 && req.version_minor >= 1;
    state_.version_minor = req.version_minor;
    request_version.assign(state_.http11 ? "HTTP/1.1" : "HTTP/1.0");
    if (req.version_major == 1 && req.version_minor > 1) {
        request_version.assign("HTTP/1.");
        detail::append_number(request_version, static_cast<unsigned>(req.version_minor));
    }
    requestline.assign(command);
    requestline += ' ';
    requestline += path;
    requestline += ' ';
    requestline += request_version;
    headers.swap(req.headers);
    // Nothing buffered behind the head (the usual case): hold no read buffer
    // while the handler runs, which may be for minutes (a comet waiter). The
    // head's last byte is still unconsumed (http-parser leaves it when
    // paused); keep the buffer if anything else follows.
    if (in_.size() <= 1 && !parser_.has_body()) finish_head_now();
    close_connection = !(protocol_version == "HTTP/1.1" && parser_.keep_alive());
    state_.head = command == "HEAD";
    body_.clear();
}

void BaseHTTPRequestHandler::finish_head_now() {
    // A request without a body ends right after its head: consume that end
    // now, so the read buffer can be given back before the handler runs.
    std::size_t used = 0;
    auto ev = parser_.feed(in_.data(), in_.size(), &used);
    in_.consume(used);
    if (ev == RequestParser::Event::end) state_.body_done = true;
    in_.release_if_empty();
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
        state_ = {};
        state_.response_start = out_.size();
        if (head == Head::timeout) send_error(408, "Request Timeout");
        else send_error(parser_.error_status(), std::string(parser_.error_message()));
        try {
            flush_output();
        } catch (const IoError&) {
        }
        return false;
    }
    begin_request();

    Failure failure = Failure::none;
    int error_status = 0;
    Status io_status = Status::ok;
    std::string what;
    try {
        bool go_on = true;
        if (policy_.length_required && parser_.chunked()) {
            state_.refused_body = state_.body_done = linger_ = true;
            send_error(411, "Length Required", "This resource needs a Content-Length");
            go_on = false;
        }
        if (go_on && policy_.mode == BodyPolicy::Mode::buffered) go_on = read_buffered_body();
        if (go_on) dispatch();
        finish_response();
        if (!drain_body()) close_connection = true;
    } catch (const AbortConnection&) {
        failure = Failure::aborted;
    } catch (const HttpError& e) {
        failure = Failure::http_error;
        error_status = e.status();
        what = e.what();
    } catch (const IoError& e) {
        failure = Failure::io_error;
        io_status = e.status();
        what = e.what();
    } catch (const std::exception& e) {
        failure = Failure::exception;
        what = e.what();
    } catch (...) {
        failure = Failure::exception;
        what = "an exception not derived from std::exception";
    }
    // Out of the catch blocks before anything that may block.
    if (failure != Failure::none) {
        close_connection = true;
        state_.body_done = true;
        bool io_timeout = failure == Failure::io_error && io_status == Status::timeout;
        try {
            if (failure == Failure::exception) log_error("exception in do_" + command + "(): " + what);
            if (!headers_sent()) {
                if (state_.phase == Phase::status_line) out_.truncate(state_.response_start);
                state_.phase = Phase::none;
                if (failure == Failure::http_error) send_error(error_status, what);
                else if (io_timeout) send_error(408, "Request Timeout");
                else if (failure == Failure::exception) send_error(500);
            }
        } catch (const std::exception&) {
        }
        // A write that failed: the client is gone or stuck, so drop what is
        // pending. A read that failed (the body stopped, or timed out) keeps
        // the answers to earlier pipelined requests and the 408 made above.
        if (failure == Failure::io_error && state_.write_failed) out_.clear();
        else if (failure == Failure::io_error && !io_timeout) out_.truncate(state_.response_start);
        if (failure == Failure::http_error || (io_timeout && !state_.write_failed)) linger_ = true;
    }
    // Answers to pipelined requests wait to share a write, but only up to the
    // buffer limit (headers-only answers, HEAD or 304, add up too).
    if (close_connection || in_.empty() || out_.size() >= config_->output_buffer_limit) {
        try {
            flush_output();
        } catch (const IoError&) {
            close_connection = true;
        }
    }
    return !close_connection;
}

// --- the default do_X: as if Python found no such method --------------------------

void BaseHTTPRequestHandler::do_GET() { send_error(501, "Unsupported method ('" + command + "')"); }
void BaseHTTPRequestHandler::do_HEAD() { do_GET(); }  // state_.head keeps the body out
void BaseHTTPRequestHandler::do_POST() { send_error(501, "Unsupported method ('" + command + "')"); }
void BaseHTTPRequestHandler::do_PUT() { send_error(501, "Unsupported method ('" + command + "')"); }
void BaseHTTPRequestHandler::do_DELETE() { send_error(501, "Unsupported method ('" + command + "')"); }
void BaseHTTPRequestHandler::do_PATCH() { send_error(501, "Unsupported method ('" + command + "')"); }
void BaseHTTPRequestHandler::do_OPTIONS() { send_error(501, "Unsupported method ('" + command + "')"); }
void BaseHTTPRequestHandler::do_method() { send_error(501, "Unsupported method ('" + command + "')"); }

}  // namespace tendril::http
