// sys_sendfile for Linux: sendfile(2) moves file pages to the socket in the
// kernel, without passing through a user buffer.
#include "tendril/net/poll_fd.hpp"

#include <sys/sendfile.h>

namespace tendril {

ssize_t sys_sendfile(int sock_fd, int file_fd, off_t offset, std::size_t count) {
    return ::sendfile(sock_fd, file_fd, &offset, count);
}

}  // namespace tendril
