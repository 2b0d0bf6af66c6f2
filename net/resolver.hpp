// Name resolution off the loop: getaddrinfo() blocks (it may wait seconds for
// a DNS server), so it runs on the WorkPool while the fiber parks. Numeric
// addresses are parsed in place without a thread hop.
#pragma once

#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/net/address.hpp"

#include <string_view>
#include <vector>

namespace tendril {

// Addresses for host (a name or a numeric address) and port. With a
// deadline, a slow lookup returns Status::timeout and is abandoned.
Result<std::vector<SocketAddress>> resolve(std::string_view host, std::uint16_t port,
                                           Deadline deadline = {});

}  // namespace tendril
