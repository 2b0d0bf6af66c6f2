// A real redis-server for the Redis client tests: started on a free
// loopback port, killed and restarted on the same port at will.
#pragma once

#include <tendril/net/redis/connection.hpp>
#include <tendril/sched/scheduler.hpp>

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace tendril::test {

inline bool have_redis_server() { return std::system("command -v redis-server >/dev/null 2>&1") == 0; }

// A port nothing listens on right now.
inline std::uint16_t free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
        throw std::runtime_error("free_port: no loopback port");
    ::close(fd);
    return ntohs(a.sin_port);
}

class RedisServer {
public:
    RedisServer() : port_(free_port()) { start(); }
    ~RedisServer() { kill(); }
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    std::uint16_t port() const { return port_; }

    // Start (again, on the same port) and wait, from a fiber, until it answers PING.
    void start() {
        std::string port = std::to_string(port_);
        std::vector<std::string> args{"redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
                                      "--dir", "/tmp"};
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        if (posix_spawnp(&pid_, "redis-server", &fa, nullptr, argv.data(), environ) != 0)
            throw std::runtime_error("cannot start redis-server");
        posix_spawn_file_actions_destroy(&fa);
        started_ = false;
    }
    // Until it answers PING (call from a fiber).
    bool wait_ready(Deadline deadline = Deadline::after(std::chrono::seconds(10))) {
        while (!deadline.expired()) {
            auto c = redis::Connection::open("127.0.0.1", port_, Deadline::after(std::chrono::milliseconds(200)));
            if (c) {
                auto r = c->command({"PING"}, Deadline::after(std::chrono::seconds(1)));
                if (r && r->is_status("PONG")) return started_ = true;
            }
            (void)sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }
    void kill() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGKILL);
        int st = 0;
        ::waitpid(pid_, &st, 0);
        pid_ = -1;
    }

private:
    std::uint16_t port_;
    pid_t pid_ = -1;
    bool started_ = false;
};

}  // namespace tendril::test
