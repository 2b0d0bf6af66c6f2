// sys_sendfile for FreeBSD and macOS, whose sendfile(2) signatures differ
// from Linux's (and from each other's).
#include "tendril/net/poll_fd.hpp"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>

namespace tendril {

ssize_t sys_sendfile(int sock_fd, int file_fd, off_t offset, std::size_t count) {
#if defined(__APPLE__)
    off_t len = static_cast<off_t>(count);
    int rc = ::sendfile(file_fd, sock_fd, offset, &len, nullptr, 0);
#else
    off_t len = 0;
    int rc = ::sendfile(file_fd, sock_fd, offset, count, nullptr, &len, 0);
#endif
    // A partial send reports EAGAIN with the bytes sent in len.
    if (rc == 0 || (errno == EAGAIN && len > 0)) return static_cast<ssize_t>(len);
    return -1;
}

}  // namespace tendril
