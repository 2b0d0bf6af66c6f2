// BaseHTTPRequestHandler: Python's http.server handler surface, for fibers.
//
//   class Hello : public http::BaseHTTPRequestHandler {
//   public:
//       void do_GET() override {
//           send_response(200);
//           send_header("Content-Type", "text/plain");
//           send_header("Content-Length", "13");
//           end_headers();
//           wfile.write("Hello, World!");
//       }
//   };
//
// One handler object serves one connection (handle() loops over its
// requests), as in Python; the attributes (command, path, headers, ...)
// describe the current request. Where Python is unsafe we are strict: the
// request head has a deadline, framing is checked (see request_parser.hpp),
// an unread body is drained or the connection closed, and a response without
// Content-Length is chunked for HTTP/1.1 clients (close-delimited for 1.0).
//
// rfile reads only the request body, decoded (Content-Length or chunked),
// and answers `Expect: 100-continue` on first use. wfile writes the body of
// the response begun with send_response()/end_headers() (or a plain 200 if
// the handler writes without one). Output is buffered and sent when the
// handler returns, when wfile.flush() is called, or when it would pass
// ServerConfig::output_buffer_limit (16 KiB): then the write parks until the
// client has taken the bytes, so a client that does not read holds up its
// own handler and never grows the server's memory.
#pragma once

#include "tendril/core/buffer.hpp"
#include "tendril/core/status.hpp"
#include "tendril/http/config.hpp"
#include "tendril/http/headers.hpp"
#include "tendril/http/message.hpp"
#include "tendril/http/request_parser.hpp"
#include "tendril/net/address.hpp"
#include "tendril/net/socket.hpp"
#include "tendril/sched/fiber.hpp"

#include <cstdint>
#include <ctime>
#include <stdexcept>
#include <string>
#include <string_view>

namespace tendril::http {

class BaseHTTPRequestHandler;
class BaseHTTPServer;
}  // namespace tendril::http
namespace tendril {
class Scheduler;
}
namespace tendril::http {

// Thrown by abort_connection(): ends the connection without finishing the
// response (Go's http.ErrAbortHandler). Not logged as an error.
struct AbortConnection {};

// Throw from a handler to answer with an error page (as Flask's abort()):
// throw HttpError(404, "no such blob");
class HttpError : public std::runtime_error {
public:
    explicit HttpError(int status, const std::string& message = {})
        : std::runtime_error(message), status_(status) {}
    int status() const noexcept { return status_; }

private:
    int status_;
};

// The request body (Python's rfile, limited to the body).
class BodyReader {
public:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    // Up to n bytes ("" at the end of the body); npos: the rest of the body.
    std::string read(std::size_t n = npos);
    std::size_t read(void* buf, std::size_t n);
    // The next piece of the body without copying it ("" at the end); valid
    // until the next call. For hashing or forwarding large uploads.
    std::string_view read_chunk();
    bool at_end();

private:
    friend class BaseHTTPRequestHandler;
    BaseHTTPRequestHandler* h_ = nullptr;
};

// The response body (Python's wfile, framed for you).
class BodyWriter {
public:
    void write(std::string_view data);
    // Send what is buffered now (a comet server sends its headers before it
    // waits).
    void flush();

private:
    friend class BaseHTTPRequestHandler;
    BaseHTTPRequestHandler* h_ = nullptr;
};

class BaseHTTPRequestHandler {
public:
    BaseHTTPRequestHandler();
    virtual ~BaseHTTPRequestHandler();
    BaseHTTPRequestHandler(const BaseHTTPRequestHandler&) = delete;
    BaseHTTPRequestHandler& operator=(const BaseHTTPRequestHandler&) = delete;

    // --- Python's class attributes (assign in a subclass constructor) ------
    std::string_view server_version = "tendril/0.1";
    std::string_view sys_version = "C++20";
    std::string_view protocol_version = "HTTP/1.1";
    std::string_view error_message_format;  // printf-free: {code} {message} {explain}
    std::string_view error_content_type = "text/html;charset=utf-8";

    // --- the current request ---------------------------------------------
    std::string command;          // "GET"
    std::string path;             // "/index.html?x=1", as sent
    std::string request_version;  // "HTTP/1.1"
    std::string requestline;      // "GET /index.html?x=1 HTTP/1.1"
    Headers headers;
    bool close_connection = true;
    SocketAddress client_address;
    BodyReader rfile;
    BodyWriter wfile;
    BaseHTTPServer* server = nullptr;

    // The request body when the handler's BodyPolicy buffers it.
    const std::string& body() const { return body_; }
    // The current request as a value (copyable, sendable).
    Request request() const;
    // The socket, for select() on a hang-up while waiting (comet).
    Socket& connection() { return *sock_; }

    // --- do_<COMMAND>: the defaults answer 501, as when Python finds no method.
    virtual void do_GET();
    virtual void do_HEAD();  // default: do_GET() with the body left out
    virtual void do_POST();
    virtual void do_PUT();
    virtual void do_DELETE();
    virtual void do_PATCH();
    virtual void do_OPTIONS();
    // Any other method http-parser knows (PROPFIND, PURGE, ...).
    virtual void do_method();

    // --- responding --------------------------------------------------------
    void send_response(int code, std::string_view message = {});
    void send_response_only(int code, std::string_view message = {});
    void send_header(std::string_view keyword, std::string_view value);
    void end_headers();
    void flush_headers();
    // An HTML error page (escaped), Connection: close, no body for
    // HEAD/1xx/204/304; logged with log_error().
    void send_error(int code, std::string_view message = {}, std::string_view explain = {});
    // A whole Response in one go (Content-Length set for you).
    void send(const Response& response);
    // count bytes of file_fd from offset as (part of) the body, by
    // sendfile(2): no user buffer. With slice > 0, at most slice bytes go
    // out before other fibers get a turn (fair concurrent downloads).
    void send_file(int file_fd, std::uint64_t offset, std::uint64_t count, std::size_t slice = 0);
    bool headers_sent() const { return state_.phase >= Phase::headers_ended; }
    // Give up on this response: the connection is closed without ending the
    // body, so the client knows the response is incomplete (a chunked body
    // without its last chunk, a short Content-Length). For a comet waiter
    // released at shutdown, or a stream whose source failed.
    [[noreturn]] void abort_connection() { throw AbortConnection{}; }
    int response_status() const { return state_.status; }

    // --- logging (Common Log Format on stderr; override to change) ----------
    virtual void log_request(int code = 0, long long size = -1);
    virtual void log_error(std::string_view message);
    virtual void log_message(std::string_view message);

    virtual std::string version_string() const;
    std::string date_time_string(std::time_t t = 0) const;
    std::string log_date_time_string() const;
    virtual std::string address_string() const;
    // Called before a body announced with Expect: 100-continue is read;
    // sends "100 Continue". Return false (after sending a response, e.g.
    // 417) to refuse the body.
    virtual bool handle_expect_100();

    // --- driving (what the server calls) -------------------------------------
    void handle();
    bool handle_one_request();

    // Set up by the server before handle().
    void attach(Socket* sock, const SocketAddress& peer, BaseHTTPServer* server, const ServerConfig* config,
                BodyPolicy policy);
    // True while waiting between requests (the server closes idle
    // connections first when it shuts down).
    bool idle() const { return idle_; }

private:
    void append_header_line(std::string_view keyword, std::string_view value);
    friend class BodyReader;
    friend class BodyWriter;
    enum class Phase : std::uint8_t { none, status_line, headers_ended };
    enum class BodyMode : std::uint8_t { none, fixed, chunked, raw, until_close };
    enum class Head : std::uint8_t { request, closed, timeout, error };

    // Everything one request and its response may leave behind, in one
    // place so that the next request starts from `state_ = {}` and no flag
    // can be forgotten. The defaults are also the state before the first
    // request (and after one whose head could not be read).
    struct RequestState {
        Phase phase = Phase::none;
        BodyMode body_mode = BodyMode::none;
        int status = 0;
        int version_minor = 1;
        bool http11 = true;
        bool head = false;              // a HEAD request: no body goes out
        std::size_t response_start = 0;  // where this response begins in out_
        std::uint64_t fixed_left = 0;    // Content-Length bytes not yet written
        bool sent_length = false, sent_encoding = false, sent_connection = false;
        bool body_done = true, continue_sent = false, refused_body = false;
        bool response_flushed = false;  // some of this response has left
        bool write_failed = false;      // the client stopped taking our bytes
        bool interim = false;           // building a 1xx response in interim_bytes_
        std::string_view piece;         // the part of a body piece not yet read
    };

    // The request loop (handler.cpp).
    Head read_head();
    bool read_more(Deadline deadline, IoResult* result);
    void begin_request();
    void finish_head_now();
    void dispatch();
    Deadline after(Duration d) const;
    // The request body (body_reader.cpp).
    std::string_view body_next();
    std::size_t body_read(void* buf, std::size_t n);
    bool read_buffered_body();
    bool drain_body();
    // The response (response_writer.cpp).
    void write_body(std::string_view data);
    void buffer_or_write(std::string_view frame, std::string_view data, std::string_view trailer);
    void flush_output();
    void finish_response();
    // 1xx responses, built beside the final one (interim_response.cpp).
    void begin_interim(int code, std::string_view message);
    void add_interim_header(std::string_view keyword, std::string_view value);
    void send_interim();
    void write_log_line(std::string_view message);  // access_log.cpp
    void linger_close();                             // lingering_close.cpp

    static const std::string_view default_error_message_format;  // error_page.cpp

    Socket* sock_ = nullptr;
    Scheduler* sched_ = nullptr;
    const ServerConfig* config_ = nullptr;
    BodyPolicy policy_{};
    RequestParser parser_;
    ByteBuffer in_, out_;
    // Buffers, kept apart from state_ so that their memory is reused from
    // one request to the next.
    std::string body_;
    std::string interim_bytes_;
    RequestState state_;
    // The connection's, not a request's.
    bool idle_ = false;
    bool linger_ = false;  // input may be unread: close gently
    friend class BaseHTTPServer;
};

}  // namespace tendril::http
