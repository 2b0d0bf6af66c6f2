// LogWriter (see log_writer.hpp).
#include "tendril/sched/log_writer.hpp"

#include "tendril/core/log.hpp"
#include "tendril/sched/detail/poll_desc.hpp"
#include "tendril/sched/detail/scheduler_core.hpp"
#include "tendril/sched/scheduler.hpp"

#include <fcntl.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <mutex>

namespace tendril {

namespace {

// Where the lines go: our own non-blocking descriptor for stderr, or none
// (fd -1: write fd 2 directly). Shared by the writers of every thread;
// reopen() replaces it, and the last writer still holding the old one
// closes it.
struct Target {
    int fd = -1;
    bool socket = false;
    ~Target() {
        if (fd >= 0) ::close(fd);
    }
};

std::mutex g_target_mutex;
std::shared_ptr<const Target> g_target;
std::atomic<unsigned> g_target_generation{0};

std::shared_ptr<const Target> open_target() {
    auto t = std::make_shared<Target>();
    struct stat st;
    if (::fstat(STDERR_FILENO, &st) != 0 || S_ISREG(st.st_mode) || S_ISBLK(st.st_mode)) return t;
    if (S_ISSOCK(st.st_mode)) {
        t->fd = ::fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        t->socket = t->fd >= 0;
        return t;
    }
    // A pipe, FIFO or terminal: a file description of our own.
    t->fd = ::open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    return t;
}

std::shared_ptr<const Target> current_target() {
    std::lock_guard<std::mutex> lock(g_target_mutex);
    if (!g_target) g_target = open_target();
    return g_target;
}

ssize_t put(const Target& t, std::string_view s) {
    if (t.socket) return ::send(t.fd, s.data(), s.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    return ::write(t.fd, s.data(), s.size());
}

std::uint64_t count_lines(std::string_view s) {
    std::uint64_t n = 0;
    for (char c : s) n += c == '\n';
    return n ? n : 1;
}

// Blocking, for the end of the process.
void write_stderr(std::string_view s) {
    while (!s.empty()) {
        ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        s.remove_prefix(static_cast<std::size_t>(n));
    }
}

bool submit_to_current(std::string_view lines) noexcept {
    Scheduler* s = Scheduler::current();
    if (!s) return false;
    try {
        return s->log_writer().submit(lines);
    } catch (...) {  // out of memory: the caller writes the line itself
        return false;
    }
}

void flush_current() noexcept {
    Scheduler* s = Scheduler::current();
    if (!s) return;
    s->log_writer().flush_blocking();
}

}  // namespace

void LogWriter::install() {
    static std::once_flag once;
    std::call_once(once, [] { set_log_sink(LogSink{submit_to_current, flush_current}); });
}

void LogWriter::reopen() {
    auto t = open_target();
    std::lock_guard<std::mutex> lock(g_target_mutex);
    g_target = std::move(t);
    g_target_generation.fetch_add(1, std::memory_order_release);
}

LogWriter::~LogWriter() {
    // The scheduler is going away with lines its writer never got to: give
    // them one non-blocking try, then let them go.
    if (pending_bytes() == 0) return;
    auto t = current_target();
    std::string_view rest(buf_.data() + head_, buf_.size() - head_);
    if (t->fd < 0) {
        write_stderr(rest);
        return;
    }
    while (!rest.empty()) {
        ssize_t n = put(*t, rest);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        rest.remove_prefix(static_cast<std::size_t>(n));
    }
}

bool LogWriter::submit(std::string_view lines) {
    unsigned gen = g_target_generation.load(std::memory_order_acquire);
    if (gen != target_generation_ || !target_known_) {
        direct_ = current_target()->fd < 0;
        target_generation_ = gen;
        target_known_ = true;
    }
    if (direct_ && !running_) return false;
    if (pending_bytes() + lines.size() > kCapacity) {
        std::uint64_t n = count_lines(lines);
        dropped_unreported_ += n;
        dropped_total_ += n;
        return true;
    }
    buf_.append(lines);
    if (!running_) {
        running_ = true;
        sched_.owner().go([this] { run(); }, FiberOptions{"log-writer"});
    }
    return true;
}

void LogWriter::flush_blocking() {
    if (pending_bytes() > 0) write_stderr(std::string_view(buf_.data() + head_, buf_.size() - head_));
    buf_.clear();
    head_ = 0;
}

bool LogWriter::next_piece(std::string_view* piece) const {
    std::string_view rest(buf_.data() + head_, buf_.size() - head_);
    if (rest.empty()) return false;
    if (rest.size() <= PIPE_BUF) {
        *piece = rest;
    } else {
        auto cut = rest.rfind('\n', PIPE_BUF - 1);
        *piece = cut == std::string_view::npos ? rest.substr(0, PIPE_BUF) : rest.substr(0, cut + 1);
    }
    return true;
}

void LogWriter::drop_pending() {
    if (pending_bytes() > 0) {
        std::uint64_t n = count_lines(std::string_view(buf_.data() + head_, buf_.size() - head_));
        dropped_total_ += n;
    }
    buf_.clear();
    head_ = 0;
    dropped_unreported_ = 0;
}

void LogWriter::run() {
    std::shared_ptr<const Target> t = current_target();
    PollDesc* pd = nullptr;
    for (;;) {
        if (dropped_unreported_ && pending_bytes() == 0) {
            char note[160];
            int n = std::snprintf(note, sizeof note,
                                  "tendril: %llu log line(s) dropped: stderr did not keep up\n",
                                  static_cast<unsigned long long>(dropped_unreported_));
            buf_.append(note, static_cast<std::size_t>(n));
            dropped_unreported_ = 0;
        }
        std::string_view piece;
        if (!next_piece(&piece)) break;
        if (t->fd < 0) {  // stderr changed under us to something we write directly
            flush_blocking();
            continue;
        }
        ssize_t n = put(*t, piece);
        if (n > 0) {
            head_ += static_cast<std::size_t>(n);
            if (head_ == buf_.size()) {
                buf_.clear();
                head_ = 0;
                if (buf_.capacity() > 64 * 1024) buf_.shrink_to_fit();
            }
            continue;
        }
        int e = n < 0 ? errno : EAGAIN;
        if (e == EINTR) continue;
        if (e == EAGAIN || e == EWOULDBLOCK) {
            if (!pd) pd = sched_.poll_open(t->fd);
            if (!pd->polled) {  // cannot wait for it: write it the old way
                flush_blocking();
                continue;
            }
            pd->writable = false;
            Status st = sched_.wait_writable(pd, sched_.deadline_after(std::chrono::seconds(1)));
            if (st == Status::ok) continue;
            // Nothing else left to run and stderr stuck: the program is done,
            // and waiting on would keep it from ending.
            if (st == Status::timeout && sched_.live_fibers() > 1) continue;
        }
        drop_pending();  // stuck at the end, cancelled, or stderr is gone (EPIPE)
        break;
    }
    if (pd) sched_.poll_release(pd);
    running_ = false;
}

}  // namespace tendril
