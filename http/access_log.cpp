// The access and error log: Python's Common Log Format lines on stderr,
// through log_message(), which a handler may override to send them elsewhere.
#include "tendril/http/handler.hpp"

#include "tendril/core/log.hpp"
#include "tendril/http/date_cache.hpp"
#include "tendril/http/detail/append_number.hpp"

namespace tendril::http {

using detail::append_number;

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

std::string BaseHTTPRequestHandler::log_date_time_string() const { return std::string(log_date_time_now()); }

std::string BaseHTTPRequestHandler::address_string() const { return client_address.host(); }

}  // namespace tendril::http
