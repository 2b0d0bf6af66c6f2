// What every app shares (../shared/spec/apps.md, "Common to every app"):
// --host/--port/--quiet/--help with exit 2 on a bad flag, the one
// "listening on http://HOST:PORT" line, and a graceful stop on SIGINT or
// SIGTERM (stop accepting, let requests in flight finish, exit 0).
#pragma once

#include <tendril/http/server.hpp>
#include <tendril/net/resolver.hpp>
#include <tendril/sched/scheduler.hpp>
#include <tendril/sched/signals.hpp>

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <iostream>
#include <string>

namespace tendril::apps {

struct CommonOptions {
    std::string host = "127.0.0.1";
    int port = 8080;
    bool quiet = false;
    double grace_seconds = 5;
    double header_timeout_seconds = 10;
};

inline void add_common_options(CLI::App& app, CommonOptions& o) {
    app.add_option("--host", o.host, "address to listen on")->capture_default_str();
    app.add_option("--port", o.port, "port to listen on (0 picks a free one)")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    app.add_flag("--quiet", o.quiet, "no access log");
    app.add_option("--grace", o.grace_seconds, "seconds requests in flight get on SIGINT/SIGTERM")
        ->check(CLI::Range(0.0, 3600.0))
        ->capture_default_str();
    app.add_option("--header-timeout", o.header_timeout_seconds,
                   "seconds a client gets to send a whole request head (then 408)")
        ->check(CLI::Range(0.001, 3600.0))
        ->capture_default_str();
}

// Parse argv; --help prints usage and exits 0, a bad flag or value exits 2.
inline void parse_or_exit(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        std::cout << app.help();
        std::exit(0);
    } catch (const CLI::ParseError& e) {
        std::cerr << app.get_name() << ": " << e.what() << "\n"
                  << "Run with --help for usage.\n";
        std::exit(2);
    }
}

// Resolve --host, bind, or exit 2 with a message.
inline Listener listen_or_exit(const std::string& name, const CommonOptions& o) {
    // _Exit: this runs in a fiber, and exit() would tear down the thread's
    // fiber stacks while still standing on one.
    auto addrs = resolve(o.host, static_cast<std::uint16_t>(o.port), Deadline::after(std::chrono::seconds(10)));
    if (!addrs || addrs.value.empty()) {
        std::cerr << name << ": cannot resolve --host '" << o.host << "'" << std::endl;
        std::_Exit(2);
    }
    auto l = Listener::listen(addrs.value.front());
    if (!l) {
        std::cerr << name << ": cannot listen on " << addrs.value.front().to_string() << ": "
                  << describe(l.status, l.error) << std::endl;
        std::_Exit(2);
    }
    return std::move(l.value);
}

// Announce, serve until SIGINT/SIGTERM, then stop gracefully. before_stop
// runs first (the comet app releases its parked waiters there).
inline void serve(http::BaseHTTPServer& server, const CommonOptions& o,
                  std::function<void()> before_stop = nullptr) {
    server.config().access_log = !o.quiet;
    server.config().header_timeout =
        std::chrono::duration_cast<Duration>(std::chrono::duration<double>(o.header_timeout_seconds));
    // The handlers go in before the line is printed: a signal sent the moment
    // a supervisor sees the line must already stop the server gracefully.
    auto signals = std::make_shared<SignalSet>(std::initializer_list<int>{SIGINT, SIGTERM});
    SocketAddress at = server.server_address();
    std::printf("listening on http://%s\n", at.to_string().c_str());
    std::fflush(stdout);
    auto grace = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(o.grace_seconds));
    go([&server, before_stop, grace, signals] {
        (void)signals->wait();
        if (before_stop) before_stop();
        server.shutdown(Deadline::after(grace));
    }, FiberOptions{"signals"});
    server.serve_forever();
}

}  // namespace tendril::apps
