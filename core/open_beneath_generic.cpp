// open_beneath where there is no openat2: the realpath check.
#include "tendril/core/open_beneath.hpp"

namespace tendril {

int open_beneath(int dir_fd, const std::string& dir_path, const std::string& relative) {
    return open_beneath_by_realpath(dir_fd, dir_path, relative);
}

}  // namespace tendril
