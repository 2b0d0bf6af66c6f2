// PollFd: an owned, non-blocking descriptor whose calls park the fiber
// instead of blocking the thread (Go's internal/poll.FD).
//
// Every call loops: try the syscall; on EAGAIN clear the PollDesc's ready
// flag and park until the poller sees the next edge (or the Deadline passes,
// or the fiber is cancelled, or another fiber closes the descriptor); on
// EINTR retry. A read or write that comes back short also clears the flag,
// since the kernel buffer was drained (filled) at that moment and the next
// change raises a new edge: that saves the EAGAIN syscall on the hot path.
// Not after a hang-up, though: data and FIN can share one edge, and the EOF
// behind the data would never be announced again.
#pragma once

#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/sched/select.hpp"

#include <sys/types.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>

namespace tendril {

struct PollDesc;
namespace detail {
class SchedulerCore;
}

class PollFd {
public:
    PollFd() = default;
    // Takes ownership of fd, makes it non-blocking and registers it with the
    // current thread's scheduler (once, for its whole life).
    explicit PollFd(int fd);
    // For a descriptor known to be a non-blocking socket (accept4 with
    // SOCK_NONBLOCK): skips the fstat and fcntl, two syscalls per connection.
    struct NonBlockingSocket {};
    PollFd(int fd, NonBlockingSocket);
    ~PollFd() { close(); }
    PollFd(PollFd&& o) noexcept;
    PollFd& operator=(PollFd&& o) noexcept;
    PollFd(const PollFd&) = delete;
    PollFd& operator=(const PollFd&) = delete;

    int fd() const { return fd_; }
    bool is_open() const { return fd_ >= 0; }
    explicit operator bool() const { return is_open(); }
    PollDesc* desc() const { return pd_; }

    // Up to n bytes; eof when the peer finished.
    IoResult read(void* buf, std::size_t n, Deadline deadline = {});
    IoResult readv(const iovec* iov, int count, Deadline deadline = {});
    // Up to n bytes (partial writes are returned, not retried).
    IoResult write(const void* buf, std::size_t n, Deadline deadline = {});
    // All of it, or the reason it stopped (with n = bytes written).
    IoResult write_all(const void* buf, std::size_t n, Deadline deadline = {});
    IoResult writev_all(iovec* iov, int count, Deadline deadline = {});

    [[nodiscard]] Status wait_readable(Deadline deadline = {});
    [[nodiscard]] Status wait_writable(Deadline deadline = {});
    // Until the peer hangs up or the socket fails; data arriving meanwhile
    // is left unread.
    [[nodiscard]] Status wait_hangup(Deadline deadline = {});
    bool hung_up() const;

    FdCase on_readable() { return FdCase(pd_, FdCase::readable); }
    FdCase on_writable() { return FdCase(pd_, FdCase::writable); }
    FdCase on_hangup() { return FdCase(pd_, FdCase::hangup); }

    // Wakes any fiber parked on it (Status::closed), then closes.
    void close();
    // Stops polling and hands the descriptor over without closing it.
    int release();

    // Mark the descriptor drained/full after the caller's own syscall
    // (for code that calls the kernel directly, e.g. connect).
    void consumed_read();
    void consumed_write();

    // The one EAGAIN/park loop every call here (and Listener::accept,
    // Socket::sendfile) is built on. `call` is a syscall on fd(): -1 with
    // errno on failure. It runs when the direction may be ready; EINTR runs
    // it again, EAGAIN marks the direction drained and parks the fiber until
    // the next edge. Returns the call's result (>= 0), or -1 with *why =
    // Status::error and errno the call's own, or -1 with *why the reason the
    // wait ended (timeout, cancelled, closed).
    enum class Direction : bool { read, write };
    template <class Call>
    ssize_t until_ready(Direction dir, Call&& call, Deadline deadline, Status* why);

    // False once a call found the direction drained (EAGAIN, a short
    // read or write) and no edge has come since: a syscall now would only
    // return EAGAIN. For code that calls the kernel itself (TLS's BIO).
    bool maybe_ready(Direction dir) const;

private:
    Status wait(Direction dir, Deadline deadline);
    // restore(): bring back the compacted stacks the buffers lie on (EFAULT).
    template <class Call, class Restore>
    IoResult retry_read(Call call, Restore restore, std::size_t n, Deadline deadline);
    template <class Call, class Restore>
    IoResult retry_write(Call call, Restore restore, std::size_t n, Deadline deadline);

    int fd_ = -1;
    bool is_socket_ = true;
    PollDesc* pd_ = nullptr;
    detail::SchedulerCore* sched_ = nullptr;
};

template <class Call>
ssize_t PollFd::until_ready(Direction dir, Call&& call, Deadline deadline, Status* why) {
    for (;;) {
        if (fd_ < 0) {
            *why = Status::closed;
            return -1;
        }
        if (!maybe_ready(dir)) {  // drained last time: wait for the edge, not for EAGAIN
            Status st = wait(dir, deadline);
            if (st != Status::ok) {
                *why = st;
                return -1;
            }
        }
        ssize_t r = call();
        if (r >= 0) {
            *why = Status::ok;
            return r;
        }
        int e = errno;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EWOULDBLOCK) {
            dir == Direction::read ? consumed_read() : consumed_write();
            continue;
        }
        *why = Status::error;
        return -1;
    }
}

// The platform's sendfile (net/sendfile_linux.cpp or sendfile_bsd.cpp):
// bytes sent from file_fd at offset to sock_fd, or -1 with errno.
ssize_t sys_sendfile(int sock_fd, int file_fd, off_t offset, std::size_t count);

}  // namespace tendril
