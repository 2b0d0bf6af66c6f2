// Client (see client.hpp).
#include "tendril/http/client.hpp"

#include <charconv>
#include <cstring>

namespace tendril::http {

namespace {
// The errno when there is one ("Connection reset by peer" says more than
// "closed"), else the status ("timeout", "cancelled").
std::string reason(Status st, int sys_errno) { return sys_errno ? std::strerror(sys_errno) : to_string(st); }

bool framing_given(const Headers& h) { return h.contains("Content-Length") || h.contains("Transfer-Encoding"); }
}  // namespace

Client::Client(const SocketAddress& server, ClientOptions options)
    : server_(server), options_(std::move(options)) {
    if (options_.host_header.empty()) options_.host_header = server_.to_string();
}

Status Client::fail(Status st, int sys_errno, std::string what) {
    if (st == Status::ok) st = Status::error;
    errno_ = sys_errno;
    error_ = what.empty() ? reason(st, sys_errno) : std::move(what);
    return st;
}

void Client::close() {
    sock_.close();
    in_.release();
    reusable_ = false;
}

Status Client::ensure_connected(Deadline deadline) {
    if (sock_.is_open() && reusable_ && !sock_.hung_up()) return Status::ok;
    close();
    auto s = Socket::connect(server_, deadline, options_.connect);
    if (!s) return fail(s.status, s.error, "connect to " + server_.to_string() + ": " + reason(s.status, s.error));
    sock_ = std::move(s.value);
    eof_ = false;
    if (options_.tls) {
        std::string why;
        std::string name = options_.server_name.empty() ? server_.host() : options_.server_name;
        Status st = sock_.start_tls(options_.tls, deadline, name, &why);
        if (st != Status::ok) {
            sock_.close();
            return fail(st, 0, "TLS with " + server_.to_string() + ": " + why);
        }
    }
    return Status::ok;
}

Status Client::write(std::string_view bytes, Deadline deadline) {
    IoResult r = sock_.write_all(bytes, deadline);
    if (!r) {
        reusable_ = false;
        return fail(r.status, r.error, "sending the request: " + reason(r.status, r.error));
    }
    return Status::ok;
}

Status Client::send_head(const Request& head, std::optional<std::uint64_t> body_length, bool chunked,
                         Deadline deadline) {
    error_.clear();
    errno_ = 0;
    Status st = ensure_connected(deadline);
    if (st != Status::ok) return st;
    std::string out;
    out.reserve(256);
    out += head.method;
    out += ' ';
    out += head.target;
    out += ' ';
    out += head.version();
    out += "\r\n";
    if (!head.headers.contains("Host") && head.version_minor >= 1) out += "Host: " + options_.host_header + "\r\n";
    head.headers.write_to(out);
    if (!framing_given(head.headers)) {
        if (body_length) out += "Content-Length: " + std::to_string(*body_length) + "\r\n";
        else if (chunked) out += "Transfer-Encoding: chunked\r\n";
    }
    if (!options_.keep_alive && !head.headers.contains("Connection")) out += "Connection: close\r\n";
    out += "\r\n";
    chunked_upload_ = chunked && !body_length;
    head_request_ = head.method == "HEAD";
    parser_.reset(head_request_);
    body_done_ = false;
    reusable_ = false;
    return write(out, deadline);
}

Status Client::write_body(std::string_view piece, Deadline deadline) {
    if (piece.empty()) return Status::ok;
    if (!chunked_upload_) return write(piece, deadline);
    char size[24];
    auto [end, ec] = std::to_chars(size, size + sizeof size - 2, piece.size(), 16);
    *end++ = '\r';
    *end++ = '\n';
    iovec iov[3] = {{size, static_cast<std::size_t>(end - size)},
                    {const_cast<char*>(piece.data()), piece.size()},
                    {const_cast<char*>("\r\n"), 2}};
    IoResult r = sock_.writev(iov, 3, deadline);
    return r ? Status::ok : fail(r.status, r.error, "sending the request: " + reason(r.status, r.error));
}

Status Client::finish_body(Deadline deadline) {
    if (!chunked_upload_) return Status::ok;
    chunked_upload_ = false;
    return write("0\r\n\r\n", deadline);
}

ResponseParser::Event Client::next_event(Deadline deadline, Status* status) {
    *status = Status::ok;
    for (;;) {
        if (!in_.empty()) {
            std::size_t used = 0;
            auto ev = parser_.feed(in_.data(), in_.size(), &used);
            in_.consume(used);
            if (ev == ResponseParser::Event::error) fail(Status::error, 0, std::string("malformed response: ") + parser_.error());
            if (ev != ResponseParser::Event::need_more) return ev;
        }
        if (eof_) {
            auto ev = parser_.finish();
            if (ev == ResponseParser::Event::need_more || ev == ResponseParser::Event::error) {
                *status = fail(Status::eof, 0, parser_.started()
                                                   ? "the server closed the connection in the middle of the response"
                                                   : "the server closed the connection before the response head");
            }
            return ev == ResponseParser::Event::need_more ? ResponseParser::Event::error : ev;
        }
        if (in_.empty()) {
            // Hold no buffer while the server takes its time (a comet
            // client may wait minutes for its answer).
            in_.release();
            Status w = sock_.wait_readable(deadline);
            if (w != Status::ok) {
                *status = fail(w, 0, "waiting for the response: " + reason(w, 0));
                return ResponseParser::Event::error;
            }
        }
        char* p = in_.prepare(4096);
        IoResult r = sock_.read_some(p, in_.writable(), deadline);
        if (r.status == Status::eof) {
            eof_ = true;
            continue;
        }
        if (!r) {
            *status = fail(r.status, r.error, "reading the response: " + reason(r.status, r.error));
            return ResponseParser::Event::error;
        }
        in_.commit(r.n);
    }
}

Result<Response> Client::read_head(Deadline deadline) {
    Result<Response> r;
    for (;;) {
        Status st;
        auto ev = next_event(deadline, &st);
        if (ev == ResponseParser::Event::head) {
            if (parser_.response().status >= 100 && parser_.response().status < 200) {
                // An interim response (100 Continue): skip to the final one.
                while ((ev = next_event(deadline, &st)) != ResponseParser::Event::end)
                    if (ev == ResponseParser::Event::error) break;
                if (ev == ResponseParser::Event::end) {
                    parser_.reset(head_request_);
                    continue;
                }
            } else {
                // The server answered: an earlier failure (a body it would
                // not take, say) is no longer the story.
                error_.clear();
                errno_ = 0;
                r.value = parser_.response();
                return r;
            }
        }
        reusable_ = false;
        r.status = st == Status::ok ? Status::error : st;
        r.error = errno_;
        return r;
    }
}

Result<std::string_view> Client::read_body(Deadline deadline) {
    Result<std::string_view> r;
    if (body_done_) return r;
    Status st;
    auto ev = next_event(deadline, &st);
    if (ev == ResponseParser::Event::body) {
        r.value = parser_.body_piece();
        return r;
    }
    if (ev == ResponseParser::Event::end) {
        body_done_ = true;
        reusable_ = parser_.keep_alive() && options_.keep_alive && !eof_;
        if (!reusable_) close();
        return r;
    }
    reusable_ = false;
    r.status = st == Status::ok ? Status::error : st;
    r.error = errno_;
    return r;
}

Result<std::string> Client::read_body_all(Deadline deadline) {
    Result<std::string> r;
    for (;;) {
        auto piece = read_body(deadline);
        if (!piece) {
            r.status = piece.status;
            r.error = piece.error;
            return r;
        }
        if (piece.value.empty() && body_done_) return r;
        r.value.append(piece.value);
    }
}

Result<Response> Client::request(Request req, Deadline deadline) {
    bool fresh = !(sock_.is_open() && reusable_);
    for (int attempt = 0; attempt < 2; ++attempt) {
        bool body = !req.body.empty() || req.method == "POST" || req.method == "PUT";
        Status st = send_head(req, body ? std::optional<std::uint64_t>(req.body.size()) : std::nullopt, false,
                              deadline);
        if (st == Status::ok && !req.body.empty()) st = write_body(req.body, deadline);
        Result<Response> r;
        if (st == Status::ok) {
            r = read_head(deadline);
        } else {
            r.status = st;
            r.error = errno_;
        }
        if (r) {
            auto b = read_body_all(deadline);
            if (!b) {
                r.status = b.status;
                r.error = b.error;
                return r;
            }
            r.value.body = std::move(b.value);
            return r;
        }
        // A kept-alive connection the server had closed: try once on a new one.
        bool retry = !fresh && (r.status == Status::eof || r.status == Status::closed ||
                                r.status == Status::error) && !parser_.started();
        close();
        if (!retry) return r;
        fresh = true;
    }
    return Result<Response>{{}, Status::error, 0};
}

Result<Response> Client::get(std::string_view target, Deadline deadline) {
    Request req;
    req.method = "GET";
    req.target = std::string(target);
    return request(std::move(req), deadline);
}

Result<Response> Client::post(std::string_view target, std::string body, std::string_view content_type,
                              Deadline deadline) {
    Request req;
    req.method = "POST";
    req.target = std::string(target);
    req.headers.add("Content-Type", content_type);
    req.body = std::move(body);
    return request(std::move(req), deadline);
}

Result<std::string> Client::raw(std::string_view bytes, Deadline deadline) {
    Result<std::string> r;
    close();
    error_.clear();
    errno_ = 0;
    Status st = ensure_connected(deadline);
    if (st == Status::ok) st = write(bytes, deadline);
    if (st != Status::ok) {
        r.status = st;
        r.error = errno_;
        return r;
    }
    char buf[16 * 1024];
    for (;;) {
        IoResult rr = sock_.read_some(buf, sizeof buf, deadline);
        if (rr.status == Status::eof) break;
        if (!rr) {
            r.status = fail(rr.status, rr.error, "reading the response: " + reason(rr.status, rr.error));
            r.error = rr.error;
            break;
        }
        r.value.append(buf, rr.n);
    }
    close();
    return r;
}

}  // namespace tendril::http
