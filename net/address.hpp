// SocketAddress: an IPv4, IPv6 or Unix-domain address, parsed and printed
// without name resolution (resolver.hpp does that, off the loop).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tendril {

class SocketAddress {
public:
    SocketAddress() = default;
    SocketAddress(const sockaddr* sa, socklen_t len);

    // "127.0.0.1", "::1", "localhost" is NOT accepted (numeric only).
    static std::optional<SocketAddress> ip(std::string_view host, std::uint16_t port);
    // "127.0.0.1:8080", "[::1]:8080"
    static std::optional<SocketAddress> parse(std::string_view host_port);
    static std::optional<SocketAddress> unix_path(std::string_view path);

    int family() const { return storage_.ss_family; }
    bool is_ip() const { return family() == AF_INET || family() == AF_INET6; }
    bool valid() const { return len_ > 0; }
    std::uint16_t port() const;
    void set_port(std::uint16_t port);
    // "127.0.0.1", "::1", or the socket path.
    std::string host() const;
    // "127.0.0.1:8080", "[::1]:8080", or the socket path.
    std::string to_string() const;

    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage_); }
    sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage_); }
    socklen_t length() const { return len_; }
    socklen_t* length_ptr() { return &len_; }
    static constexpr socklen_t capacity() { return sizeof(sockaddr_storage); }

private:
    sockaddr_storage storage_{};
    socklen_t len_ = 0;
};

}  // namespace tendril
