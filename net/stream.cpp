// Stream (see stream.hpp).
#include "tendril/net/stream.hpp"

#include "tendril/net/resolver.hpp"

#include <cstring>

namespace tendril {

namespace {
constexpr std::size_t kReadChunk = 16 * 1024;
constexpr std::size_t kWriteFlushAt = 16 * 1024;
}  // namespace

Stream Stream::connect_tcp(std::string_view host, std::uint16_t port, Deadline deadline) {
    auto addrs = resolve(host, port, deadline);
    if (!addrs) throw IoError(addrs.status, addrs.error, "resolve " + std::string(host) + ": " +
                                                             describe(addrs.status, addrs.error));
    IoResult last{};
    for (const SocketAddress& a : addrs.value) {
        auto s = Socket::connect(a, deadline);
        if (s) return Stream(std::move(s.value));
        last = {0, s.status, s.error};
    }
    throw IoError(last.status, last.error, "connect " + std::string(host) + ":" + std::to_string(port) +
                                               ": " + describe(last.status, last.error));
}

void Stream::fail(const IoResult& r, const char* what) {
    throw IoError(r.status, r.error, std::string(what) + ": " + describe(r.status, r.error));
}

bool Stream::fill() {
    if (eof_) return false;
    char* p = rbuf_.prepare(kReadChunk);
    IoResult r = sock_.read_some(p, rbuf_.writable(), deadline());
    if (r.status == Status::eof) {
        eof_ = true;
        return false;
    }
    if (!r) fail(r, "read");
    rbuf_.commit(r.n);
    return true;
}

std::string Stream::read(std::size_t n) {
    while ((n == npos || rbuf_.size() < n) && fill()) {
    }
    std::size_t take = std::min(n, rbuf_.size());
    std::string out(rbuf_.data(), take);
    rbuf_.consume(take);
    return out;
}

std::string Stream::read_until(std::string_view sep, std::size_t max) {
    std::size_t scanned = 0;
    for (;;) {
        std::string_view v = rbuf_.view();
        std::size_t from = scanned >= sep.size() ? scanned - sep.size() + 1 : 0;
        std::size_t at = v.find(sep, from);
        if (at != std::string_view::npos && at + sep.size() <= max) {
            std::string out(v.substr(0, at + sep.size()));
            rbuf_.consume(out.size());
            return out;
        }
        if (v.size() >= max) {
            std::string out(v.substr(0, max));
            rbuf_.consume(max);
            return out;
        }
        scanned = v.size();
        if (!fill()) {
            std::string out(rbuf_.view());
            rbuf_.consume(out.size());
            return out;
        }
    }
}

std::string Stream::read_line(std::size_t max) { return read_until("\n", max); }

std::string Stream::read_exact(std::size_t n) {
    std::string out = read(n);
    if (out.size() < n) fail(IoResult{out.size(), Status::eof, 0}, "read_exact");
    return out;
}

bool Stream::at_eof() { return rbuf_.empty() && !fill(); }

void Stream::write(std::string_view data) {
    if (wbuf_.size() + data.size() > kWriteFlushAt) {
        flush();
        if (data.size() > kWriteFlushAt) {  // large writes skip the buffer
            IoResult r = sock_.write_all(data, deadline());
            if (!r) fail(r, "write");
            return;
        }
    }
    wbuf_.append(data);
}

void Stream::flush() {
    if (wbuf_.empty()) return;
    IoResult r = sock_.write_all(wbuf_.data(), wbuf_.size(), deadline());
    wbuf_.consume(r.n);
    if (!r) fail(r, "write");
    wbuf_.release();
}

void Stream::close() {
    if (!sock_.is_open()) return;
    try {
        flush();
    } catch (...) {
        sock_.close();
        release_buffers();
        throw;
    }
    sock_.close();
    release_buffers();
}

void Stream::release_buffers() {
    rbuf_.release_if_empty();
    wbuf_.release_if_empty();
}

}  // namespace tendril
