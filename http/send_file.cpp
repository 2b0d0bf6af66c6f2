// send_file(): a file as the response body by sendfile(2), so a download
// costs no user-space copy; framed like any other body write.
#include "tendril/http/handler.hpp"

#include "tendril/http/detail/append_number.hpp"
#include "tendril/sched/scheduler.hpp"

#include <stdexcept>

namespace tendril::http {

void BaseHTTPRequestHandler::send_file(int file_fd, std::uint64_t offset, std::uint64_t count, std::size_t slice) {
    if (state_.phase == Phase::none) send_response(200);
    if (state_.phase == Phase::status_line) end_headers();
    if (state_.body_mode == BodyMode::none || count == 0) return;
    if (state_.body_mode == BodyMode::fixed) {
        if (count > state_.fixed_left) throw std::length_error("the response body is longer than its Content-Length");
        state_.fixed_left -= count;
    }
    if (state_.body_mode == BodyMode::chunked) {
        detail::append_number(out_, count, 16);
        out_.append("\r\n", 2);
    }
    flush_output();  // the file's bytes bypass out_: what is in it goes first
    state_.response_flushed = true;
    std::uint64_t sent = 0;
    while (sent < count) {
        std::uint64_t n = count - sent;
        if (slice && n > slice) n = slice;
        IoResult r = sock_->sendfile(file_fd, static_cast<off_t>(offset + sent), static_cast<std::size_t>(n),
                                     after(config_->write_timeout));
        sent += r.n;
        state_.write_failed = !r && r.status != Status::eof;
        if (r.status == Status::eof) {
            close_connection = true;
            throw std::runtime_error("the file shrank while it was being sent");
        }
        if (!r) throw IoError(r.status, r.error, "sending a file: " + describe(r.status, r.error));
        if (slice && sent < count) yield();  // let the other downloads move
    }
    if (state_.body_mode == BodyMode::chunked) out_.append("\r\n", 2);
}

}  // namespace tendril::http
