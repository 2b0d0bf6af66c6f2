// Client: HTTP/1.1 over one connection, on the same fibers as the servers
// (the seed drove its server with clients written in the same framework).
//
//   http::Client c(*SocketAddress::parse("127.0.0.1:8080"));
//   auto r = c.get("/plaintext", Deadline::after(5s));
//   if (r) std::cout << r->status << " " << r->body;
//
// The connection is kept alive between requests when the server allows it
// and re-opened when it does not (or when an idle connection turns out to be
// closed before anything of the response arrived). Large or open-ended
// exchanges stream: send_head()/write_body()/finish_body() upload a body
// piece by piece (Content-Length or chunked), read_head()/read_body() take a
// response as it arrives, including close-delimited HTTP/1.0 bodies.
#pragma once

#include "tendril/core/buffer.hpp"
#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/http/message.hpp"
#include "tendril/http/response_parser.hpp"
#include "tendril/net/socket.hpp"

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace tendril::http {

struct ClientOptions {
    ConnectOptions connect{};
    bool keep_alive = true;
    std::string host_header;  // default: the address as host:port
    // HTTPS: a client context (TlsContext::client()), and the name the
    // server's certificate must carry, also sent as SNI (default: the
    // address's host).
    std::shared_ptr<TlsContext> tls;
    std::string server_name;
};

class Client {
public:
    explicit Client(const SocketAddress& server, ClientOptions options = {});

    // --- whole exchanges -------------------------------------------------------
    Result<Response> request(Request req, Deadline deadline = {});
    Result<Response> get(std::string_view target, Deadline deadline = {});
    Result<Response> post(std::string_view target, std::string body,
                          std::string_view content_type = "application/octet-stream", Deadline deadline = {});

    // --- streaming ---------------------------------------------------------------
    // Send the request head. body_length: the Content-Length to announce;
    // nullopt with chunked = true announces a chunked body; neither: no body.
    Status send_head(const Request& head, std::optional<std::uint64_t> body_length, bool chunked,
                     Deadline deadline = {});
    Status write_body(std::string_view piece, Deadline deadline = {});
    Status finish_body(Deadline deadline = {});
    // The response head (interim 1xx responses are skipped).
    Result<Response> read_head(Deadline deadline = {});
    // The next piece of the response body, valid until the next call; empty
    // with Status::ok at the end of the body.
    Result<std::string_view> read_body(Deadline deadline = {});
    Result<std::string> read_body_all(Deadline deadline = {});

    // --- raw ----------------------------------------------------------------------
    // Send bytes as they are and read until the server closes (for
    // HTTP/1.0-style exchanges and malformed-request tests).
    Result<std::string> raw(std::string_view bytes, Deadline deadline = {});

    bool connected() const { return sock_.is_open(); }
    void close();
    // Why the last failed call failed, in words ("reading the response:
    // Connection reset by peer", "the server closed the connection before the
    // response head", "malformed response: ..."). Cleared when a request
    // starts (send_head, request, raw) and when a response head arrives.
    const std::string& last_error() const { return error_; }
    Socket& socket() { return sock_; }
    const SocketAddress& server() const { return server_; }

private:
    Status ensure_connected(Deadline deadline);
    Status write(std::string_view bytes, Deadline deadline);
    ResponseParser::Event next_event(Deadline deadline, Status* status);
    Status fail(Status st, int sys_errno, std::string what = {});

    SocketAddress server_;
    ClientOptions options_;
    Socket sock_;
    ByteBuffer in_;
    ResponseParser parser_;
    bool chunked_upload_ = false;
    bool head_request_ = false;
    bool body_done_ = true;
    bool reusable_ = false;
    bool eof_ = false;
    std::string error_;
    int errno_ = 0;
};

}  // namespace tendril::http
