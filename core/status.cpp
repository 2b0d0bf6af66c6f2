// Names for Status values and the IoError exception.
#include "tendril/core/status.hpp"

#include <cstring>

namespace tendril {

const char* to_string(Status s) noexcept {
    switch (s) {
    case Status::ok: return "ok";
    case Status::timeout: return "timeout";
    case Status::cancelled: return "cancelled";
    case Status::closed: return "closed";
    case Status::eof: return "eof";
    case Status::error: return "error";
    case Status::full: return "full";
    case Status::empty: return "empty";
    }
    return "?";
}

std::string describe(Status status, int error) {
    if (status == Status::error && error) return std::strerror(error);
    return to_string(status);
}

IoError::IoError(Status status, int sys_errno, const std::string& what)
    : std::runtime_error(what), status_(status), errno_(sys_errno) {}

}  // namespace tendril
