// recv, send, read, write, readv, writev and sendmsg without glibc's
// thread-cancellation bracket.
//
// Those calls are pthread cancellation points: once a process has a second
// thread, glibc wraps each one in __pthread_enable_asynccancel() and
// __pthread_disable_asynccancel(), two atomic read-modify-writes of the
// thread's cancel state per call (a single-threaded process skips them).
// hello on two scheduler threads spent 1.6% of all its CPU there under
// /plaintext load (perf, wrk -c1000), a sixteenth of its user time; nginx's
// single-threaded workers never do. A scheduler thread is never pthread_cancel()ed
// (it would unwind through every fiber's stack), so on Linux these go to
// syscall(2), which is no cancellation point. Elsewhere, and under the
// sanitizers (whose interceptors check the buffers and, for TSan, order the
// threads on each descriptor), they are the libc calls.
#pragma once

#include "tendril/core/sanitizers.hpp"

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__linux__) && !defined(TENDRIL_ASAN) && !defined(TENDRIL_TSAN) && !defined(TENDRIL_MSAN)
#include <sys/syscall.h>
#define TENDRIL_RAW_SYSCALLS 1
#endif

namespace tendril::uncancellable {

#ifdef TENDRIL_RAW_SYSCALLS
inline ssize_t recv(int fd, void* buf, std::size_t n, int flags) {
    return ::syscall(SYS_recvfrom, fd, buf, n, flags, nullptr, nullptr);
}
inline ssize_t send(int fd, const void* buf, std::size_t n, int flags) {
    return ::syscall(SYS_sendto, fd, buf, n, flags, nullptr, 0);
}
inline ssize_t read(int fd, void* buf, std::size_t n) { return ::syscall(SYS_read, fd, buf, n); }
inline ssize_t write(int fd, const void* buf, std::size_t n) { return ::syscall(SYS_write, fd, buf, n); }
inline ssize_t readv(int fd, const iovec* iov, int count) { return ::syscall(SYS_readv, fd, iov, count); }
inline ssize_t writev(int fd, const iovec* iov, int count) { return ::syscall(SYS_writev, fd, iov, count); }
inline ssize_t sendmsg(int fd, const msghdr* msg, int flags) { return ::syscall(SYS_sendmsg, fd, msg, flags); }
#else
inline ssize_t recv(int fd, void* buf, std::size_t n, int flags) { return ::recv(fd, buf, n, flags); }
inline ssize_t send(int fd, const void* buf, std::size_t n, int flags) { return ::send(fd, buf, n, flags); }
inline ssize_t read(int fd, void* buf, std::size_t n) { return ::read(fd, buf, n); }
inline ssize_t write(int fd, const void* buf, std::size_t n) { return ::write(fd, buf, n); }
inline ssize_t readv(int fd, const iovec* iov, int count) { return ::readv(fd, iov, count); }
inline ssize_t writev(int fd, const iovec* iov, int count) { return ::writev(fd, iov, count); }
inline ssize_t sendmsg(int fd, const msghdr* msg, int flags) { return ::sendmsg(fd, msg, flags); }
#endif

}  // namespace tendril::uncancellable
