// Opening a file strictly beneath a directory: the path may not leave it by
// "..", an absolute symlink or a symlink chain. Linux does this in the kernel
// (openat2 with RESOLVE_BENEATH: core/open_beneath_linux.cpp); elsewhere the
// resolved path is checked against the directory's (open_beneath_posix.cpp).
#pragma once

#include <string>

namespace tendril {

// A descriptor for dir/relative opened read-only, or -1 with errno set
// (EXDEV when the path would leave dir).
int open_beneath(int dir_fd, const std::string& dir_path, const std::string& relative);

// The portable way (realpath, then a prefix check); open_beneath uses it
// where the kernel cannot do better.
int open_beneath_by_realpath(int dir_fd, const std::string& dir_path, const std::string& relative);

}  // namespace tendril
