// send_error(): Python's error page, with its escaping, so that a message
// built from the request cannot inject markup or split the status line.
#include "tendril/http/handler.hpp"

#include "tendril/http/status.hpp"

namespace tendril::http {

namespace {

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

}  // namespace

const std::string_view BaseHTTPRequestHandler::default_error_message_format =
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
    if (state_.phase == Phase::status_line) out_.truncate(state_.response_start);
    state_.phase = Phase::none;
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

}  // namespace tendril::http
