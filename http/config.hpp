// What an HTTP server lets its operator tune: timeouts, limits, logging,
// and how a handler wants its request bodies.
#pragma once

#include "tendril/core/time.hpp"
#include "tendril/http/request_parser.hpp"
#include "tendril/net/tls_context.hpp"
#include "tendril/net/connection_limit.hpp"

#include <cstddef>
#include <memory>

namespace tendril::http {

// Declared by a handler class as `static constexpr BodyPolicy body_policy = ...;`
// Buffered (the default): the body is read into memory before do_X() runs,
// up to max_size (413 past it, before reading when Content-Length says so).
// Streamed: do_X() reads it from rfile as it arrives.
// length_required: a chunked body (length unknown up front) gets 411.
struct BodyPolicy {
    enum class Mode : unsigned char { buffered, streamed };
    Mode mode = Mode::buffered;
    std::size_t max_size = 1 << 20;
    bool length_required = false;

    static constexpr BodyPolicy buffered(std::size_t max_size = 1 << 20, bool length_required = false) {
        return {Mode::buffered, max_size, length_required};
    }
    static constexpr BodyPolicy streamed(bool length_required = false) {
        return {Mode::streamed, 0, length_required};
    }
};

struct ServerConfig {
    // The whole request head must arrive within this (slowloris): 408.
    Duration header_timeout = std::chrono::seconds(10);
    // Between reads of a request body.
    Duration body_timeout = std::chrono::seconds(30);
    // A keep-alive connection waiting for its next request.
    Duration idle_timeout = std::chrono::seconds(60);
    // Each write to a client that does not read (slow readers).
    Duration write_timeout = std::chrono::seconds(60);
    ParserLimits limits{};
    // The Common Log Format access log on stderr.
    bool access_log = true;
    // Unread request body drained after a response to keep the connection.
    std::size_t drain_limit = 256 * 1024;
    // HTTPS: every connection starts with a TLS handshake, which must end
    // within header_timeout (a server context: TlsContext::server()).
    std::shared_ptr<TlsContext> tls;
    // The most response bytes a connection buffers before it writes them:
    // all that a client that stops reading can pin in this process (past it
    // the handler's write parks until the client reads, or write_timeout).
    // Small writes are gathered up to it so that they share a syscall, and
    // pipelined answers share one write; a body write that would pass it goes
    // out at once, gathered with what is buffered, without being copied.
    std::size_t output_buffer_limit = 16 * 1024;
    // At most this many connections open at once (0: no limit): at the limit
    // the server stops accepting and new clients wait in the listen backlog
    // until a connection closes (see net/connection_limit.hpp). Read when
    // serve_forever() starts.
    std::size_t max_connections = 0;
    // Or a limit shared by several servers (one per thread: per process);
    // it wins over max_connections.
    std::shared_ptr<ConnectionLimit> connection_limit;
};

}  // namespace tendril::http
