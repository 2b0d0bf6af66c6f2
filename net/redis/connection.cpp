#include "tendril/net/redis/connection.hpp"

#include "tendril/net/resolver.hpp"

#include <cerrno>

namespace tendril::redis {

namespace {
constexpr std::size_t kReadChunk = 16 * 1024;
}

Result<Connection> Connection::open(std::string_view host, std::uint16_t port, Deadline deadline) {
    std::string name = std::string(host) + ":" + std::to_string(port);
    auto addrs = resolve(host, port, deadline);
    if (!addrs || addrs.value.empty()) {
        Result<Connection> out;
        out.status = addrs ? Status::error : addrs.status;
        out.error = addrs ? EHOSTUNREACH : addrs.error;
        out.value.name_ = name;
        out.value.error_ = "redis " + name + ": cannot resolve the host: " + describe(out.status, out.error);
        return out;
    }
    return open(addrs.value, std::move(name), deadline);
}

Result<Connection> Connection::open(const std::vector<SocketAddress>& addresses, std::string name, Deadline deadline) {
    Result<Connection> out;
    Connection& c = out.value;
    c.name_ = std::move(name);
    out.status = Status::error;
    out.error = EHOSTUNREACH;
    c.error_ = "redis " + c.name_ + ": no address to connect to";
    for (const SocketAddress& a : addresses) {
        auto s = Socket::connect(a, deadline);
        if (s) {
            c.sock_ = std::move(s.value);
            c.buf_ = std::make_unique<char[]>(kReadChunk);
            c.error_.clear();
            out.status = Status::ok;  // an earlier address may have failed
            out.error = 0;
            return out;
        }
        out.status = s.status;
        out.error = s.error;
        c.error_ = "redis " + c.name_ + ": connecting to " + a.to_string() + ": " + describe(s.status, s.error);
    }
    return out;
}

void Connection::close() {
    sock_.close();
    reader_->reset();
}

Status Connection::fail(Status st, int sys_errno, std::string_view doing) {
    error_ = "redis " + name_ + ": " + std::string(doing) + ": " + describe(st, sys_errno);
    close();
    return st;
}

Status Connection::send(const Commands& commands, Deadline deadline) {
    if (!sock_.is_open()) {
        if (error_.empty()) error_ = "redis " + name_ + ": not connected";
        return Status::closed;
    }
    std::string_view bytes = commands.bytes();
    IoResult w = sock_.write_all(bytes, deadline);
    if (!w) return fail(w.status, w.error, "sending a command");
    return Status::ok;
}

Result<Reply> Connection::read_reply(Deadline deadline) { return next_reply(deadline, true); }

Result<Reply> Connection::wait_reply(Deadline deadline) { return next_reply(deadline, false); }

Result<Reply> Connection::next_reply(Deadline deadline, bool close_on_timeout) {
    Result<Reply> out;
    for (;;) {
        switch (reader_->next(out.value)) {
            case ReplyReader::Next::reply: error_.clear(); return out;
            case ReplyReader::Next::protocol_error: {
                std::string why = reader_->error();
                out.status = fail(Status::error, EPROTO, "reading a reply");
                error_ = "redis " + name_ + ": malformed reply: " + why;
                return out;
            }
            case ReplyReader::Next::need_more: break;
        }
        if (!sock_.is_open()) {
            out.status = Status::closed;
            if (error_.empty()) error_ = "redis " + name_ + ": not connected";
            return out;
        }
        IoResult r = sock_.read_some(buf_.get(), kReadChunk, deadline);
        if (r.n > 0) {
            reader_->feed(buf_.get(), r.n);
            continue;
        }
        out.error = r.error;
        if (r.status == Status::timeout && !close_on_timeout) {
            out.status = Status::timeout;
            return out;
        }
        if (r.status == Status::eof || r.status == Status::ok) {
            out.status = fail(Status::eof, 0, "reading a reply");
            error_ = "redis " + name_ + ": the server closed the connection";
        } else {
            out.status = fail(r.status, r.error, "reading a reply");
        }
        return out;
    }
}

Result<std::vector<Reply>> Connection::execute(const Commands& commands, Deadline deadline) {
    Result<std::vector<Reply>> out;
    if ((out.status = send(commands, deadline)) != Status::ok) return out;
    out.value.reserve(commands.count());
    for (std::size_t i = 0; i < commands.count(); ++i) {
        Result<Reply> r = read_reply(deadline);
        if (!r) {
            out.status = r.status;
            out.error = r.error;
            return out;
        }
        out.value.push_back(std::move(r.value));
    }
    return out;
}

Result<Reply> Connection::command(std::initializer_list<std::string_view> args, Deadline deadline) {
    Result<Reply> out;
    Commands c(args);
    if ((out.status = send(c, deadline)) != Status::ok) return out;
    return read_reply(deadline);
}

}  // namespace tendril::redis
