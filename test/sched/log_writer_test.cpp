// LogWriter: a stderr whose reader stalls never stalls the scheduler. Lines
// wait in a bounded buffer, the excess is dropped and counted, and a line
// says so once stderr takes bytes again; what arrives is whole lines, in order.
#include <doctest/doctest.h>

#include <tendril/core/log.hpp>
#include <tendril/http/handler.hpp>
#include <tendril/sched/log_writer.hpp>
#include <tendril/sched/scheduler.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

using namespace tendril;
using namespace std::chrono_literals;

namespace {

// fd 2 replaced by the write end of a small pipe for the life of the object.
struct StderrPipe {
    int read_end = -1;
    int saved = -1;
    StderrPipe() {
        int p[2];
        REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
        (void)::fcntl(p[1], F_SETPIPE_SZ, 4096);  // fills after a few dozen lines
        saved = ::dup(STDERR_FILENO);
        REQUIRE(::dup2(p[1], STDERR_FILENO) == STDERR_FILENO);
        ::close(p[1]);
        read_end = p[0];
        LogWriter::reopen();
    }
    // Put the real stderr back; the pipe's last write end goes with the
    // writer's old target, so the reader sees EOF.
    void restore() {
        if (saved < 0) return;
        ::dup2(saved, STDERR_FILENO);
        ::close(saved);
        saved = -1;
        LogWriter::reopen();
    }
    ~StderrPipe() {
        restore();
        ::close(read_end);
    }
};

}  // namespace

TEST_CASE("a stderr nobody reads does not stall the scheduler; dropped lines are counted and reported") {
    constexpr int kLines = 5000;
    StderrPipe err;
    std::atomic<bool> reading{false};
    std::string captured;
    std::thread reader([&] {
        std::this_thread::sleep_for(400ms);  // nobody reads stderr for a while
        reading = true;
        char buf[65536];
        ssize_t n;
        while ((n = ::read(err.read_end, buf, sizeof buf)) > 0) captured.append(buf, static_cast<std::size_t>(n));
    });

    int ticks_while_stalled = 0;
    Scheduler s;
    s.go([&] {
        // A fiber that must keep running while stderr is stuck.
        auto ticker = go([&] {
            while (!reading) {
                if (sleep_for(5ms) != Status::ok) return;
                if (!reading) ++ticks_while_stalled;
            }
        });
        http::BaseHTTPRequestHandler handler;  // its access/error log path
        std::string filler(90, 'x');
        for (int i = 0; i < kLines; ++i) {
            handler.log_message("line " + std::to_string(i) + " " + filler);
            if (i % 100 == 0) yield();
        }
        (void)ticker.join();
    });
    s.run();  // returns once the writer has written what it kept
    std::uint64_t dropped = s.log_writer().dropped_lines();
    err.restore();
    reader.join();

    CHECK(ticks_while_stalled >= 20);  // ~80 possible in the 400 ms; 0 if write(2) blocked
    // Whole lines, in order, then the report of what was dropped.
    std::istringstream in(captured);
    std::string line;
    int last = -1, written = 0;
    bool ordered = true, whole = true;
    std::uint64_t reported = 0;
    std::regex log_line(R"(.* - - \[[^\]]+\] line (\d+) x{90})");
    std::regex note(R"(tendril: (\d+) log line\(s\) dropped: stderr did not keep up)");
    std::smatch m;
    while (std::getline(in, line)) {
        if (std::regex_match(line, m, log_line)) {
            int i = std::stoi(m[1]);
            ordered &= i > last;
            last = i;
            ++written;
        } else if (std::regex_match(line, m, note)) {
            reported += std::stoull(m[1]);
        } else {
            whole = false;
        }
    }
    CHECK(whole);
    CHECK(ordered);
    CHECK(dropped > 0);
    CHECK(reported == dropped);
    CHECK(written + static_cast<int>(dropped) == kLines);
    MESSAGE(written << " lines written, " << dropped << " dropped, " << ticks_while_stalled
                    << " ticks of another fiber while stderr was stuck");
}

TEST_CASE("without a scheduler, and for TENDRIL_LOG, lines still reach stderr") {
    StderrPipe err;
    log_write("outside any scheduler\n");
    run([] {
        set_log_level(LogLevel::info);
        TENDRIL_LOG(LogLevel::info, "from a fiber: %d", 42);
        set_log_level(LogLevel::warning);
    });
    err.restore();
    std::string got;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(err.read_end, buf, sizeof buf)) > 0) got.append(buf, static_cast<std::size_t>(n));
    CHECK(got.find("outside any scheduler\n") == 0);
    CHECK(got.find("tendril info: from a fiber: 42\n") != std::string::npos);
}
