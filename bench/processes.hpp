// Processes in the benchmarks: the server under test in a child process
// (its CPU seconds and memory are then its own, not mixed with the
// clients'), its first line ("listening on ..."), its CPU seconds and
// resident memory from /proc, and how busy the whole machine was (a run on
// a busy, shared machine should say so next to its figures).
#pragma once

#include <tendril/net/address.hpp>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

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

// utime and stime of a process (all its threads), from /proc/PID/stat;
// zero for pid <= 0, so that a run without a server process of its own can
// take the same samples.
inline Cpu process_cpu(pid_t pid) {
    if (pid <= 0) return {};
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

inline Cpu self_cpu() { return rusage_cpu(RUSAGE_SELF); }

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

// This binary's path: the server it starts is a sibling (or itself), from
// the same build, wherever the build is.
inline std::string self_exe() {
    char buf[4096];
    ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
    return std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
}

// A program's path from $PATH ("" when it is not there).
inline std::string find_program(const std::string& name) {
    const char* path = std::getenv("PATH");
    std::istringstream dirs(path ? path : "/usr/bin:/bin");
    for (std::string dir; std::getline(dirs, dir, ':');) {
        std::string p = (dir.empty() ? "." : dir) + "/" + name;
        if (::access(p.c_str(), X_OK) == 0) return p;
    }
    return "";
}

// A loopback TCP port nothing listens on right now (for a server that
// cannot pick its own, like redis-server).
inline std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    auto a = tendril::SocketAddress::ip("127.0.0.1", 0);
    tendril::SocketAddress bound;
    *bound.length_ptr() = tendril::SocketAddress::capacity();
    if (fd < 0 || !a || ::bind(fd, a->get(), a->length()) != 0 || ::getsockname(fd, bound.get(), bound.length_ptr()) != 0)
        throw std::runtime_error("no free loopback port");
    ::close(fd);
    return bound.port();
}

// --- the server under test in a child process -------------------------------------

// A server that picks a free port says which on its first line,
// `<announce>HOST:PORT`; nothing else of its output is read.
struct ServerCommand {
    std::vector<std::string> argv;  // argv[0] is the program's path (no PATH search)
    std::string announce = "listening on ";
    std::chrono::seconds startup{10};       // to print the line: a server that never does is broken
    std::chrono::milliseconds grace{3000};  // from SIGTERM to SIGKILL
    bool own_process_group = false;         // so that the SIGKILL also reaches what a shell started
    bool die_with_parent = false;           // PR_SET_PDEATHSIG: never outlive the benchmark
    std::string name = "the server";        // in the error message
};

struct ServerProcess {
    pid_t pid = -1;
    tendril::SocketAddress address;
    std::chrono::milliseconds grace{3000};
    bool own_process_group = false;

    // Throws std::runtime_error, the child stopped, if it does not say where it listens.
    static ServerProcess start(const ServerCommand& cmd) {
        int out = -1;
        ServerProcess s = spawn(cmd, &out);
        std::string line = read_first_line(out, cmd.startup);
        ::close(out);
        std::optional<tendril::SocketAddress> a;
        if (line.rfind(cmd.announce, 0) == 0) a = tendril::SocketAddress::parse(line.substr(cmd.announce.size()));
        if (!a) {
            s.stop();
            throw std::runtime_error(cmd.name + " did not print `" + cmd.announce + "HOST:PORT` (got: '" + line + "')");
        }
        s.address = *a;
        return s;
    }

    // For a server that announces nothing (redis-server): started once a
    // TCP connect to `at` succeeds. Its stdout goes to /dev/null.
    static ServerProcess start_listening_on(const ServerCommand& cmd, const tendril::SocketAddress& at) {
        ServerProcess s = spawn(cmd, nullptr);
        s.address = at;
        auto deadline = std::chrono::steady_clock::now() + cmd.startup;
        while (std::chrono::steady_clock::now() < deadline) {
            int fd = ::socket(at.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
            bool up = fd >= 0 && ::connect(fd, at.get(), at.length()) == 0;
            if (fd >= 0) ::close(fd);
            if (up) return s;
            int status = 0;
            if (::waitpid(s.pid, &status, WNOHANG) == s.pid) {
                s.pid = -1;
                throw std::runtime_error(cmd.name + " exited before it listened on " + at.to_string());
            }
            ::usleep(20000);
        }
        s.stop();
        throw std::runtime_error(cmd.name + " did not listen on " + at.to_string() + " in time");
    }

private:
    // fork and exec; `out`: a pipe for the child's stdout (read end
    // returned), or null for /dev/null.
    static ServerProcess spawn(const ServerCommand& cmd, int* out_fd) {
        ServerProcess s;
        s.grace = cmd.grace;
        s.own_process_group = cmd.own_process_group;
        std::vector<char*> argv;  // built before fork: the child only execs
        for (const std::string& a : cmd.argv) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        int out[2] = {-1, -1};
        if (out_fd && ::pipe(out) != 0) throw std::runtime_error("pipe failed");
        if (!out_fd && (out[1] = ::open("/dev/null", O_WRONLY | O_CLOEXEC)) < 0) throw std::runtime_error("no /dev/null");
        std::fflush(nullptr);  // or the child would write our buffered output again
        s.pid = ::fork();
        if (s.pid < 0) {
            if (out[0] >= 0) ::close(out[0]);
            ::close(out[1]);
            throw std::runtime_error("fork failed");
        }
        if (s.pid == 0) {
            if (cmd.die_with_parent) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            if (cmd.own_process_group) ::setpgid(0, 0);
            ::dup2(out[1], 1);
            if (out[0] >= 0) ::close(out[0]);
            ::close(out[1]);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        ::close(out[1]);
        if (out_fd) *out_fd = out[0];
        return s;
    }

public:
    // SIGTERM, up to `grace` for a graceful exit, then SIGKILL. Returns the
    // exit status (128 + signal if a signal ended it; 137 if we had to kill it).
    int stop() {
        if (pid <= 0) return -1;
        ::kill(pid, SIGTERM);
        int status = 0;
        constexpr auto step = std::chrono::milliseconds(50);
        for (auto waited = std::chrono::milliseconds(0); waited < grace; waited += step) {
            if (::waitpid(pid, &status, WNOHANG) == pid) {
                pid = -1;
                return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            }
            ::usleep(static_cast<useconds_t>(std::chrono::microseconds(step).count()));
        }
        if (own_process_group) ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        pid = -1;
        return 137;
    }
};

}  // namespace bench
