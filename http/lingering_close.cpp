// The connection's end after an error answer (RFC 9112 9.6).
#include "tendril/http/handler.hpp"

namespace tendril::http {

void BaseHTTPRequestHandler::linger_close() {
    // After an error answer the client may still be sending (a body we
    // refused, the rest of a huge header). Closing now would reset the
    // connection and could destroy our answer before it is read: stop
    // writing, then read and drop input for a moment first.
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

}  // namespace tendril::http
