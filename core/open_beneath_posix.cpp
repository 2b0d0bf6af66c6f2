// open_beneath by resolving the path and checking it stays under the
// directory (for systems without openat2; Linux also falls back to it on
// kernels before 5.6).
#include "tendril/core/open_beneath.hpp"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>

namespace tendril {

int open_beneath_by_realpath(int dir_fd, const std::string& dir_path, const std::string& relative) {
    (void)dir_fd;
    char base[PATH_MAX], full[PATH_MAX];
    if (!::realpath(dir_path.c_str(), base)) return -1;
    std::string joined = std::string(base) + "/" + relative;
    if (!::realpath(joined.c_str(), full)) return -1;
    std::string b(base), f(full);
    if (f != b && (f.compare(0, b.size(), b) != 0 || f[b.size()] != '/')) {
        errno = EXDEV;
        return -1;
    }
    return ::open(full, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);  // a FIFO must not block
}

}  // namespace tendril
