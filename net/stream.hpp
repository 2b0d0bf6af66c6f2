// Stream: a buffered reader/writer over a Socket, the port of the seed's
// ScheduledFile (fromSocket, connectTcp, readline, readUntil, write, flush).
//
// It reads like a Python file object: read(n) returns fewer bytes only at
// EOF, read_line() includes the newline and returns "" at EOF, and errors
// (timeout, cancellation, a reset connection) are thrown as IoError. Buffers
// are taken when bytes flow and given back by release_buffers() when empty,
// so a connection parked on something else holds none.
#pragma once

#include "tendril/core/buffer.hpp"
#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/net/socket.hpp"

#include <string>
#include <string_view>

namespace tendril {

class Stream {
public:
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    Stream() = default;
    explicit Stream(Socket socket) : sock_(std::move(socket)) {}
    static Stream from_socket(Socket socket) { return Stream(std::move(socket)); }
    // Resolve host (off the loop if it is a name) and connect.
    static Stream connect_tcp(std::string_view host, std::uint16_t port, Deadline deadline = {});

    // Per-call timeout for every operation (Python's settimeout); none by default.
    void set_timeout(Duration timeout) { timeout_ = timeout; }

    // Up to n bytes; fewer only at EOF. npos: everything until EOF.
    std::string read(std::size_t n = npos);
    // One line including its '\n', at most max bytes; "" at EOF.
    std::string read_line(std::size_t max = 65536);
    // Bytes up to and including sep, at most max bytes (then what was read).
    std::string read_until(std::string_view sep, std::size_t max = 65536);
    // Exactly n bytes; IoError(eof) if the peer stops first.
    std::string read_exact(std::size_t n);
    bool at_eof();

    // Buffered; flushed when the buffer fills, by flush(), and by close().
    void write(std::string_view data);
    void flush();
    void close();

    // Iterate by lines until EOF: for (const std::string& line : stream.lines())
    class LineRange;
    LineRange lines(std::size_t max = 65536);

    void release_buffers();
    Socket& socket() { return sock_; }
    std::size_t buffered() const { return rbuf_.size(); }

private:
    Deadline deadline() const { return timeout_ == Duration::max() ? Deadline() : Deadline::after(timeout_); }
    bool fill();  // read more into rbuf_; false at EOF
    [[noreturn]] void fail(const IoResult& r, const char* what);

    Socket sock_;
    ByteBuffer rbuf_, wbuf_;
    Duration timeout_ = Duration::max();
    bool eof_ = false;
};

class Stream::LineRange {
public:
    class iterator {
    public:
        iterator(Stream* s, std::size_t max) : s_(s), max_(max) { ++*this; }
        const std::string& operator*() const { return line_; }
        iterator& operator++() {
            line_ = s_->read_line(max_);
            return *this;
        }
        bool operator==(std::default_sentinel_t) const { return line_.empty(); }

    private:
        Stream* s_;
        std::size_t max_;
        std::string line_;
    };
    LineRange(Stream* s, std::size_t max) : s_(s), max_(max) {}
    iterator begin() { return iterator(s_, max_); }
    std::default_sentinel_t end() { return {}; }

private:
    Stream* s_;
    std::size_t max_;
};

inline Stream::LineRange Stream::lines(std::size_t max) { return LineRange(this, max); }

}  // namespace tendril
