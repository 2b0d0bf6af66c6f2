// LogWriter: stderr for a scheduler thread, without ever blocking it.
//
// A write(2) to stderr blocks when its reader falls behind (a paused pager, a
// slow log shipper, a pipe nobody drains), and on a scheduler thread that
// stalls every fiber. So each Scheduler keeps a bounded buffer of log lines:
// log_write() (core/log.hpp) appends whole lines and, when none runs, starts a
// "log-writer" fiber that writes them out without blocking -- on EAGAIN it
// parks on the descriptor's writability like any other fiber. It writes at
// most PIPE_BUF bytes at a time, cut at line ends, so a pipe never mixes the
// lines of two threads. A full buffer drops new lines and counts them; once
// stderr takes bytes again, a line says how many were lost.
//
// The non-blocking descriptor: stderr's file description is shared with the
// parent shell and our children, so it is never switched to O_NONBLOCK. A
// pipe, FIFO or terminal is opened again through /proc/self/fd/2, which gives
// a description of our own; a socket is written with MSG_DONTWAIT. A regular
// file cannot be polled and does not block for long: it is written directly,
// and so is everything where /proc is missing (there, writes block as before).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace tendril {

namespace detail {
class SchedulerCore;
}
struct PollDesc;

class LogWriter {
public:
    static constexpr std::size_t kCapacity = 256 * 1024;

    explicit LogWriter(detail::SchedulerCore& scheduler) : sched_(scheduler) {}
    ~LogWriter();
    LogWriter(const LogWriter&) = delete;
    LogWriter& operator=(const LogWriter&) = delete;

    // Queue complete lines; false if stderr is to be written directly.
    bool submit(std::string_view lines);
    // Lines dropped because the buffer was full, since this writer began.
    std::uint64_t dropped_lines() const { return dropped_total_; }
    std::size_t pending_bytes() const { return buf_.size() - head_; }
    // Write what is buffered now, blocking (before the process ends).
    void flush_blocking();

    // Make log_write() use the current thread's scheduler's writer (once per
    // process; the Scheduler does it).
    static void install();
    // Look at fd 2 again: for a program that redirects stderr (dup2) after
    // logging began, as a log rotation does.
    static void reopen();

private:
    void run();                  // the log-writer fiber
    void drop_pending();         // give up on what is buffered, counting it
    bool next_piece(std::string_view* piece) const;

    detail::SchedulerCore& sched_;
    std::string buf_;
    std::size_t head_ = 0;  // buf_[head_, size) is still to be written
    std::uint64_t dropped_unreported_ = 0;
    std::uint64_t dropped_total_ = 0;
    bool running_ = false;
    bool direct_ = false;        // stderr is written directly (a regular file)
    bool target_known_ = false;
    unsigned target_generation_ = 0;  // of the target direct_ describes
};

}  // namespace tendril
