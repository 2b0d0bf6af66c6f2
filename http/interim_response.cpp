// 1xx responses (100 Continue). One may be asked for while the final
// response is half built -- the handler read the body after send_response()
// -- so it is built in interim_bytes_ and written at once, ahead of the
// final response but behind the answers to earlier pipelined requests.
#include "tendril/http/handler.hpp"

#include "tendril/http/detail/append_number.hpp"

namespace tendril::http {

void BaseHTTPRequestHandler::begin_interim(int code, std::string_view message) {
    state_.interim = true;
    interim_bytes_.assign(protocol_version);
    interim_bytes_ += ' ';
    detail::append_number(interim_bytes_, static_cast<unsigned>(code));
    interim_bytes_ += ' ';
    interim_bytes_ += message;
    interim_bytes_ += "\r\n";
}

void BaseHTTPRequestHandler::add_interim_header(std::string_view keyword, std::string_view value) {
    interim_bytes_.append(keyword);
    interim_bytes_ += ": ";
    interim_bytes_.append(value);
    interim_bytes_ += "\r\n";
}

void BaseHTTPRequestHandler::send_interim() {
    state_.interim = false;
    interim_bytes_ += "\r\n";
    if (state_.response_start > 0) {
        IoResult r = sock_->write_all(out_.data(), state_.response_start, after(config_->write_timeout));
        if (!r) {
            state_.write_failed = true;
            throw IoError(r.status, r.error, "writing the response: " + describe(r.status, r.error));
        }
        out_.consume(state_.response_start);
        state_.response_start = 0;
    }
    IoResult r = sock_->write_all(interim_bytes_, after(config_->write_timeout));
    if (!r) throw IoError(r.status, r.error, "writing an interim response: " + describe(r.status, r.error));
}

bool BaseHTTPRequestHandler::handle_expect_100() {
    send_response_only(100);
    end_headers();
    return true;
}

}  // namespace tendril::http
