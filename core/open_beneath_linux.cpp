// open_beneath for Linux 5.6+: openat2 with RESOLVE_BENEATH, so the kernel
// refuses any resolution that leaves the directory, races included.
#include "tendril/core/open_beneath.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace tendril {

int open_beneath(int dir_fd, const std::string& dir_path, const std::string& relative) {
    open_how how{};
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
    // writer -- and stall every fiber of the thread. No effect on files.
    how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    const char* rel = relative.empty() ? "." : relative.c_str();
    long fd = ::syscall(SYS_openat2, dir_fd, rel, &how, sizeof how);
    if (fd >= 0 || errno != ENOSYS) return static_cast<int>(fd);
    // Kernels before 5.6: the portable check.
    return open_beneath_by_realpath(dir_fd, dir_path, relative);
}

}  // namespace tendril
