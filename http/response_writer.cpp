// The final response: status line and headers into out_, then the body
// framed as the headers promised (Content-Length, chunked, or up to the
// close). Responses are buffered so that pipelined answers and small body
// writes share a write, but never past ServerConfig::output_buffer_limit: a
// write that would pass it goes out at once, gathered with what is buffered
// (so a large body is not copied), and parks the handler until the client
// takes it. That is the backpressure: a client that stops reading stops the
// handler that writes to it, and costs at most the limit in buffered bytes,
// whatever the size of the body.
#include "tendril/http/handler.hpp"

#include "tendril/http/date_cache.hpp"
#include "tendril/http/detail/append_number.hpp"
#include "tendril/http/server.hpp"
#include "tendril/http/status.hpp"

#include <charconv>

namespace tendril::http {

using detail::append_number;

void BodyWriter::write(std::string_view data) { h_->write_body(data); }

void BodyWriter::flush() {
    if (h_->state_.phase == BaseHTTPRequestHandler::Phase::status_line) h_->end_headers();
    h_->flush_output();
}

void BaseHTTPRequestHandler::send_response(int code, std::string_view message) {
    log_request(code);
    send_response_only(code, message);
    send_header("Server", version_string());
    if (state_.interim) send_header("Date", http_date_now());
    else append_header_line("Date", http_date_now());  // ours: nothing to check
}

void BaseHTTPRequestHandler::append_header_line(std::string_view keyword, std::string_view value) {
    out_.append(keyword);
    out_.append(": ", 2);
    out_.append(value);
    out_.append("\r\n", 2);
}

void BaseHTTPRequestHandler::send_response_only(int code, std::string_view message) {
    if (message.empty()) message = reason_phrase(code);  // ours, from the status table
    else if (!valid_field_value(message)) throw std::invalid_argument("send_response: control characters in the reason phrase");
    if (code < 200) {
        begin_interim(code, message);
        return;
    }
    if (state_.phase == Phase::none) state_.response_start = out_.size();
    state_.status = code;
    state_.phase = Phase::status_line;
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
    if (state_.interim) {
        add_interim_header(keyword, value);
        return;
    }
    if (state_.phase != Phase::status_line) throw std::logic_error("send_header() outside a response's headers");
    append_header_line(keyword, value);
    // The framing headers the handler sends itself decide how the body is
    // framed in end_headers().
    if (iequals(keyword, "Content-Length")) {
        std::uint64_t n = 0;
        auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
        if (ec != std::errc() || end != value.data() + value.size())
            throw std::invalid_argument("send_header: bad Content-Length");
        state_.sent_length = true;
        state_.fixed_left = n;
    } else if (iequals(keyword, "Transfer-Encoding")) {
        state_.sent_encoding = true;
    } else if (iequals(keyword, "Connection")) {
        state_.sent_connection = true;
        if (iequals(value, "close")) close_connection = true;
        else if (iequals(value, "keep-alive")) close_connection = false;
    }
}

void BaseHTTPRequestHandler::end_headers() {
    if (state_.interim) {
        send_interim();
        return;
    }
    if (state_.phase != Phase::status_line) throw std::logic_error("end_headers() without send_response()");
    if (state_.head || !status_has_body(state_.status)) {
        state_.body_mode = BodyMode::none;
    } else if (state_.sent_encoding) {
        state_.body_mode = BodyMode::raw;
    } else if (state_.sent_length) {
        state_.body_mode = BodyMode::fixed;
    } else if (state_.http11 && protocol_version == "HTTP/1.1") {
        out_.append("Transfer-Encoding: chunked\r\n");
        state_.body_mode = BodyMode::chunked;
    } else {
        state_.body_mode = BodyMode::until_close;  // HTTP/1.0: the end of the body is the close
        close_connection = true;
    }
    if (server && server->stopping()) close_connection = true;
    if (!state_.sent_connection) {
        if (close_connection) out_.append("Connection: close\r\n");
        else if (!state_.http11) out_.append("Connection: keep-alive\r\n");
    }
    out_.append("\r\n", 2);
    state_.phase = Phase::headers_ended;
}

void BaseHTTPRequestHandler::flush_headers() { flush_output(); }

void BaseHTTPRequestHandler::write_body(std::string_view data) {
    if (state_.phase == Phase::none) send_response(200);
    if (state_.phase == Phase::status_line) end_headers();
    char size_line[2 * sizeof(std::uint64_t) + 2];
    std::string_view frame, trailer;
    bool too_long = false;
    switch (state_.body_mode) {
    case BodyMode::none: return;  // HEAD, 204, 304: no body goes out
    case BodyMode::fixed:
        if (data.size() > state_.fixed_left) {
            data = data.substr(0, state_.fixed_left);  // what the Content-Length allows goes out
            close_connection = true;
            too_long = true;
        }
        state_.fixed_left -= data.size();
        break;
    case BodyMode::chunked: {
        if (data.empty()) return;  // an empty chunk would end the body
        auto [end, ec] = std::to_chars(size_line, size_line + sizeof size_line - 2, data.size(), 16);
        end[0] = '\r';
        end[1] = '\n';
        frame = std::string_view(size_line, static_cast<std::size_t>(end + 2 - size_line));
        trailer = "\r\n";
        break;
    }
    default: break;
    }
    if (!data.empty()) buffer_or_write(frame, data, trailer);
    if (too_long) throw std::length_error("the response body is longer than its Content-Length");
}

void BaseHTTPRequestHandler::buffer_or_write(std::string_view frame, std::string_view data, std::string_view trailer) {
    if (out_.size() + frame.size() + data.size() + trailer.size() <= config_->output_buffer_limit) {
        // (An empty view may have no data pointer, and memcpy must not see it.)
        if (!frame.empty()) out_.append(frame);
        out_.append(data);
        if (!trailer.empty()) out_.append(trailer);
        return;
    }
    iovec iov[4];
    int n = 0;
    for (std::string_view piece : {out_.view(), frame, data, trailer})
        if (!piece.empty()) iov[n++] = {const_cast<char*>(piece.data()), piece.size()};
    IoResult r = sock_->writev(iov, n, after(config_->write_timeout));
    // Nothing stays buffered while the handler goes on (or parks in its
    // next write): the block goes back to the pool.
    out_.release();
    state_.write_failed = !r;
    if (!r) throw IoError(r.status, r.error, "writing the response: " + describe(r.status, r.error));
    state_.response_start = 0;
    state_.response_flushed = true;
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
        state_.write_failed = true;
        throw IoError(r.status, r.error, "writing the response: " + describe(r.status, r.error));
    }
    out_.release();
    state_.response_start = 0;
    if (state_.phase != Phase::none) state_.response_flushed = true;
}

void BaseHTTPRequestHandler::finish_response() {
    if (state_.phase == Phase::none) {
        log_error("do_" + command + "() sent no response");
        send_error(500, "Internal Server Error", "The handler sent no response");
    }
    if (state_.phase == Phase::status_line) end_headers();
    switch (state_.body_mode) {
    case BodyMode::chunked: out_.append("0\r\n\r\n", 5); break;
    case BodyMode::fixed:
        if (state_.fixed_left > 0) {
            log_error("response body " + std::to_string(state_.fixed_left) + " bytes short of its Content-Length");
            close_connection = true;
        }
        break;
    case BodyMode::until_close: close_connection = true; break;
    default: break;
    }
    state_.body_mode = BodyMode::none;
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

std::string BaseHTTPRequestHandler::version_string() const {
    std::string s(server_version);
    s += ' ';
    s += sys_version;
    return s;
}

std::string BaseHTTPRequestHandler::date_time_string(std::time_t t) const {
    return t ? http_date(t) : std::string(http_date_now());
}

}  // namespace tendril::http
