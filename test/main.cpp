// The unit test binary: doctest, plus `--child NAME` to run a crash scenario.
// doctest's own SIGSEGV handler would hide tendril's (stack overflow reports and
// restoring compacted stacks); crash scenarios run as child processes instead.
#define DOCTEST_CONFIG_NO_POSIX_SIGNALS
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "support.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace tendril::test {

std::map<std::string, std::function<int()>>& child_scenarios() {
    static std::map<std::string, std::function<int()>> m;
    return m;
}

namespace {
std::string self_exe;

std::string drain(int fd) {
    std::string s;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<std::size_t>(n));
    return s;
}
}  // namespace

ChildResult run_child(const std::string& name, const std::map<std::string, std::string>& env) {
    int out[2], err[2];
    REQUIRE(::pipe(out) == 0);
    REQUIRE(::pipe(err) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        ::close(out[0]);
        ::close(err[0]);
        for (auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
        // Core dumps of expected crashes would only litter the disk.
        ::setenv("ASAN_OPTIONS", "disable_coredump=1:abort_on_error=1", 0);
        const char* argv[] = {self_exe.c_str(), "--child", name.c_str(), nullptr};
        ::execv(self_exe.c_str(), const_cast<char**>(argv));
        ::_exit(127);
    }
    ::close(out[1]);
    ::close(err[1]);
    ChildResult r;
    // Read stderr fully, then stdout (the scenarios print little to stdout).
    r.err = drain(err[0]);
    r.out = drain(out[0]);
    ::close(out[0]);
    ::close(err[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
    return r;
}

namespace {
std::vector<std::string>& skip_reasons() {
    static std::vector<std::string> v;
    return v;
}
}  // namespace

bool skip_unless(bool available, const char* test_name, const char* why) {
    if (!available) skip_reasons().push_back(std::string(test_name) + ": " + why);
    return !available;
}

long resident_bytes() {
    std::ifstream f("/proc/self/statm");
    long size = 0, resident = 0;
    f >> size >> resident;
    return resident * ::sysconf(_SC_PAGESIZE);
}

}  // namespace tendril::test

int main(int argc, char** argv) {
    char path[4096];
    ssize_t n = ::readlink("/proc/self/exe", path, sizeof path - 1);
    tendril::test::self_exe = n > 0 ? std::string(path, static_cast<std::size_t>(n)) : argv[0];
    if (argc >= 3 && std::strcmp(argv[1], "--child") == 0) {
        auto& m = tendril::test::child_scenarios();
        auto it = m.find(argv[2]);
        if (it == m.end()) {
            std::fprintf(stderr, "no child scenario '%s'\n", argv[2]);
            return 127;
        }
        // No core files for crashes the tests provoke on purpose.
        struct rlimit none{0, 0};
        ::setrlimit(RLIMIT_CORE, &none);
        return it->second();
    }
    doctest::Context ctx(argc, argv);
    int rc = ctx.run();
    for (const auto& r : tendril::test::skip_reasons()) std::printf("skipped test case: %s\n", r.c_str());
    return rc;
}
