// PollFd (see poll_fd.hpp).
#include "tendril/net/poll_fd.hpp"

#include "tendril/core/fatal.hpp"
#include "tendril/core/stack_pool.hpp"
#include "tendril/net/uncancellable_io.hpp"
#include "tendril/sched/detail/poll_desc.hpp"
#include "tendril/sched/detail/scheduler_core.hpp"
#include "tendril/sched/scheduler.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace tendril {

namespace io = uncancellable;  // recv, send, ...: no cancellation bracket (see there)

PollFd::PollFd(int fd) : fd_(fd) {
    sched_ = detail::SchedulerCore::current();
    if (!sched_) fatal("PollFd: no Scheduler on this thread");
    int fl = ::fcntl(fd, F_GETFL);
    if (fl >= 0 && !(fl & O_NONBLOCK)) ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    struct stat st;
    is_socket_ = ::fstat(fd, &st) != 0 || S_ISSOCK(st.st_mode);
    pd_ = sched_->poll_open(fd);
}

PollFd::PollFd(int fd, NonBlockingSocket) : fd_(fd) {
    sched_ = detail::SchedulerCore::current();
    if (!sched_) fatal("PollFd: no Scheduler on this thread");
    pd_ = sched_->poll_open(fd);
}

PollFd::PollFd(PollFd&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      is_socket_(o.is_socket_),
      pd_(std::exchange(o.pd_, nullptr)),
      sched_(std::exchange(o.sched_, nullptr)) {}

PollFd& PollFd::operator=(PollFd&& o) noexcept {
    if (this != &o) {
        close();
        fd_ = std::exchange(o.fd_, -1);
        is_socket_ = o.is_socket_;
        pd_ = std::exchange(o.pd_, nullptr);
        sched_ = std::exchange(o.sched_, nullptr);
    }
    return *this;
}

void PollFd::close() {
    if (fd_ < 0) return;
    sched_->poll_close(pd_);
    ::close(fd_);
    fd_ = -1;
    pd_ = nullptr;
}

int PollFd::release() {
    if (fd_ < 0) return -1;
    sched_->poll_release(pd_);
    pd_ = nullptr;
    return std::exchange(fd_, -1);
}

// A descriptor the poller does not watch (a regular file) never gets an
// edge, so it must never be marked drained (Go's pollable()): it stays ready.
void PollFd::consumed_read() {
    if (pd_->polled) pd_->readable = false;
}
void PollFd::consumed_write() {
    if (pd_->polled) pd_->writable = false;
}
bool PollFd::hung_up() const { return pd_ && (pd_->hup || pd_->err); }

Status PollFd::wait_readable(Deadline d) {
    if (fd_ < 0) return Status::closed;
    return sched_->wait_readable(pd_, d);
}
Status PollFd::wait_writable(Deadline d) {
    if (fd_ < 0) return Status::closed;
    return sched_->wait_writable(pd_, d);
}
Status PollFd::wait_hangup(Deadline d) {
    if (fd_ < 0) return Status::closed;
    return sched_->wait_hangup(pd_, d);
}

namespace {
// A syscall handed a buffer on a compacted fiber stack fails with EFAULT
// rather than faulting; every piece of a gathered buffer may be on one.
bool restore_iov(const iovec* iov, int count) {
    bool any = false;
    for (int i = 0; i < count; ++i)
        if (iov[i].iov_len && StackPool::restore_range(iov[i].iov_base, iov[i].iov_len)) any = true;
    return any;
}
}  // namespace

bool PollFd::maybe_ready(Direction dir) const { return dir == Direction::read ? pd_->readable : pd_->writable; }

Status PollFd::wait(Direction dir, Deadline deadline) {
    return dir == Direction::read ? sched_->wait_readable(pd_, deadline) : sched_->wait_writable(pd_, deadline);
}

template <class Call, class Restore>
IoResult PollFd::retry_read(Call call, Restore restore, std::size_t n, Deadline deadline) {
    for (;;) {
        Status why;
        ssize_t r = until_ready(Direction::read, call, deadline, &why);
        if (r > 0) {
            // Drained -- unless the peer's FIN (or an error) came with the
            // same edge: then the next read returns at once and no further
            // edge will ever announce it.
            if (static_cast<std::size_t>(r) < n && !pd_->hup && !pd_->err) consumed_read();
            return {static_cast<std::size_t>(r), Status::ok, 0};
        }
        if (r == 0) return {0, n == 0 ? Status::ok : Status::eof, 0};
        if (why != Status::error) return {0, why, 0};
        int e = errno;
        // The buffer is on a compacted fiber stack: restore it and retry.
        if (e == EFAULT && restore()) continue;
        return {0, Status::error, e};
    }
}

template <class Call, class Restore>
IoResult PollFd::retry_write(Call call, Restore restore, std::size_t n, Deadline deadline) {
    for (;;) {
        Status why;
        ssize_t r = until_ready(Direction::write, call, deadline, &why);
        if (r >= 0) {
            if (static_cast<std::size_t>(r) < n) consumed_write();
            return {static_cast<std::size_t>(r), Status::ok, 0};
        }
        if (why != Status::error) return {0, why, 0};
        int e = errno;
        if (e == EFAULT && restore()) continue;
        if (e == EPIPE || e == ECONNRESET) return {0, Status::closed, e};
        return {0, Status::error, e};
    }
}

IoResult PollFd::read(void* buf, std::size_t n, Deadline deadline) {
    auto restore = [&] { return StackPool::restore_range(buf, n); };
    // recv(2) on a socket: the kernel goes straight to the socket, not
    // through the file layer's position lock and fsnotify as read(2) does.
    if (is_socket_) return retry_read([&] { return io::recv(fd_, buf, n, 0); }, restore, n, deadline);
    return retry_read([&] { return io::read(fd_, buf, n); }, restore, n, deadline);
}

IoResult PollFd::readv(const iovec* iov, int count, Deadline deadline) {
    std::size_t total = 0;
    for (int i = 0; i < count; ++i) total += iov[i].iov_len;
    return retry_read([&] { return io::readv(fd_, iov, count); }, [&] { return restore_iov(iov, count); }, total,
                      deadline);
}

IoResult PollFd::write(const void* buf, std::size_t n, Deadline deadline) {
    // MSG_NOSIGNAL: a peer that went away is an EPIPE result, never SIGPIPE.
    auto restore = [&] { return StackPool::restore_range(buf, n); };
    if (is_socket_) return retry_write([&] { return io::send(fd_, buf, n, MSG_NOSIGNAL); }, restore, n, deadline);
    return retry_write([&] { return io::write(fd_, buf, n); }, restore, n, deadline);
}

IoResult PollFd::write_all(const void* buf, std::size_t n, Deadline deadline) {
    const char* p = static_cast<const char*>(buf);
    std::size_t done = 0;
    while (done < n) {
        IoResult r = write(p + done, n - done, deadline);
        if (!r) return {done, r.status, r.error};
        done += r.n;
    }
    return {done, Status::ok, 0};
}

IoResult PollFd::writev_all(iovec* iov, int count, Deadline deadline) {
    std::size_t done = 0;
    while (count > 0) {
        std::size_t want = 0;
        for (int i = 0; i < count; ++i) want += iov[i].iov_len;
        if (want == 0) break;
        IoResult r;
        auto restore = [&] { return restore_iov(iov, count); };
        if (is_socket_) {
            msghdr msg{};
            msg.msg_iov = iov;
            msg.msg_iovlen = static_cast<decltype(msg.msg_iovlen)>(count);
            r = retry_write([&] { return io::sendmsg(fd_, &msg, MSG_NOSIGNAL); }, restore, want, deadline);
        } else {
            r = retry_write([&] { return io::writev(fd_, iov, count); }, restore, want, deadline);
        }
        if (!r) return {done, r.status, r.error};
        done += r.n;
        std::size_t left = r.n;
        while (count > 0 && left >= iov[0].iov_len) {
            left -= iov[0].iov_len;
            ++iov;
            --count;
        }
        if (count > 0) {
            iov[0].iov_base = static_cast<char*>(iov[0].iov_base) + left;
            iov[0].iov_len -= left;
        }
    }
    return {done, Status::ok, 0};
}

}  // namespace tendril
