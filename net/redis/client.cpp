#include "tendril/net/redis/client.hpp"

#include <charconv>
#include <mutex>

namespace tendril::redis {

bool parse_address(std::string_view text, ClientOptions& out, std::string* why) {
    auto bad = [&](const char* reason) {
        if (why) *why = "'" + std::string(text) + "': " + reason;
        return false;
    };
    std::string_view host = text, port;
    if (!text.empty() && text.front() == '[') {
        std::size_t close = text.find(']');
        if (close == std::string_view::npos) return bad("no ']' after an IPv6 address");
        host = text.substr(1, close - 1);
        std::string_view rest = text.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return bad("expected ':PORT' after ']'");
            port = rest.substr(1);
            if (port.empty()) return bad("empty port");
        }
    } else if (std::size_t colon = text.rfind(':'); colon != std::string_view::npos) {
        if (text.find(':') != colon) return bad("an IPv6 address needs brackets: [ADDR]:PORT");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (port.empty()) return bad("empty port");
    }
    if (host.empty()) return bad("empty host");
    unsigned value = 6379;
    if (!port.empty()) {
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
            return bad("the port must be a number from 1 to 65535");
    }
    out.host = std::string(host);
    out.port = static_cast<std::uint16_t>(value);
    return true;
}

Client::Client(ClientOptions options) : options_(std::move(options)), backoff_(options_) {}

Status Client::ensure_connected(Deadline deadline, int* sys_errno) {
    if (conn_.is_open() && !conn_.hung_up()) return Status::ok;
    conn_.close();
    Instant now = Clock::now();
    if (now < retry_at_) {
        error_ = down_reason_ + " (next attempt in " + std::to_string(static_cast<long>(to_ms(retry_at_ - now))) +
                 " ms)";
        return Status::closed;
    }
    auto c = Connection::open(options_.host, options_.port,
                              earliest(deadline, Deadline::after(options_.connect_timeout)));
    if (!c) {
        down_reason_ = c.value.last_error();
        Duration delay = backoff_.next_delay();
        retry_at_ = Clock::now() + delay;
        error_ = down_reason_ + " (next attempt in " + std::to_string(static_cast<long>(to_ms(delay))) + " ms)";
        *sys_errno = c.error;
        return c.status;
    }
    conn_ = std::move(c.value);
    backoff_.reset();
    retry_at_ = {};
    ++connects_;
    return Status::ok;
}

Result<std::vector<Reply>> Client::execute(const Commands& commands, Deadline deadline) {
    Result<std::vector<Reply>> out;
    if ((out.status = mutex_.lock(deadline)) != Status::ok) {
        error_ = "redis " + options_.host + ":" + std::to_string(options_.port) +
                 ": waiting for the connection: " + describe(out.status, 0);
        return out;
    }
    std::lock_guard<Mutex> held(mutex_, std::adopt_lock);
    if ((out.status = ensure_connected(deadline, &out.error)) != Status::ok) return out;
    out = conn_.execute(commands, deadline);
    error_ = out ? std::string() : conn_.last_error();
    return out;
}

namespace {
Result<Reply> only_reply(Result<std::vector<Reply>> all) {
    Result<Reply> out;
    out.status = all.status;
    out.error = all.error;
    if (all && !all.value.empty()) out.value = std::move(all.value.front());
    return out;
}
}  // namespace

Result<Reply> Client::command(std::initializer_list<std::string_view> args, Deadline deadline) {
    return only_reply(execute(Commands(args), deadline));
}

Result<Reply> Client::command(const std::vector<std::string>& args, Deadline deadline) {
    Commands c;
    c.add(args);
    return only_reply(execute(c, deadline));
}

}  // namespace tendril::redis
