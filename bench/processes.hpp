// Processes in the benchmarks: a server's first line ("listening on ..."),
// its CPU seconds and resident memory from /proc, and how busy the whole
// machine was (a run on a busy, shared machine should say so next to its
// figures).
#pragma once

#include <poll.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

namespace bench {

// The first line a child writes to the pipe `fd` (without the newline),
// waiting up to `timeout`; "" if none came.
inline std::string read_first_line(int fd, std::chrono::seconds timeout) {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (got.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[256];
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0) break;
        got.append(buf, static_cast<std::size_t>(n));
    }
    return got.substr(0, got.find('\n'));
}

struct Cpu {
    double user = 0, sys = 0;
    double total() const { return user + sys; }
    Cpu operator-(const Cpu& o) const { return {user - o.user, sys - o.sys}; }
};

// utime and stime of a process (all its threads), from /proc/PID/stat.
inline Cpu process_cpu(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
    std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    auto close = s.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) return {};
    std::istringstream in(s.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) utime = std::stod(field);
        if (i == 15) stime = std::stod(field);
    }
    double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    return {utime / tick, stime / tick};
}

// This process (who = RUSAGE_SELF) or its waited-for children.
inline Cpu rusage_cpu(int who = RUSAGE_SELF) {
    rusage ru{};
    ::getrusage(who, &ru);
    return {ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6, ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6};
}

// VmRSS of a process in KiB.
inline long rss_kib(pid_t pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(f, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return 0;
}

// The whole machine's CPU seconds so far (/proc/stat).
struct MachineCpu {
    double busy = 0, softirq = 0, steal = 0;
};

inline MachineCpu machine_cpu() {
    std::ifstream f("/proc/stat");
    std::string cpu;
    double user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0;
    f >> cpu >> user >> nice >> system >> idle >> iowait >> irq >> softirq >> steal;
    double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
    return {(user + nice + system + irq) / tick, softirq / tick, steal / tick};
}

}  // namespace bench
