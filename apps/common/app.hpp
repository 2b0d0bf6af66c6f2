// What every app shares (../shared/spec/apps.md, "Common to every app"):
// --host/--port/--quiet/--help with exit 2 on a bad flag, the one
// "listening on http://HOST:PORT" line, and a graceful stop on SIGINT or
// SIGTERM (stop accepting, let requests in flight finish, exit 0);
// --threads N: one scheduler and one server per thread; and
// --max-connections N: a limit for the process, shared by those servers.
#pragma once

#include <tendril/http/server.hpp>
#include <tendril/net/resolver.hpp>
#include <tendril/sched/scheduler.hpp>
#include <tendril/sched/event.hpp>
#include <tendril/sched/signals.hpp>
#include <tendril/sched/threads.hpp>
#include <tendril/sched/wait_group.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <iostream>
#include <string>
#include <vector>

namespace tendril::apps {

struct CommonOptions {
    std::string host = "127.0.0.1";
    int port = 8080;
    bool quiet = false;
    double grace_seconds = 5;
    double header_timeout_seconds = 10;
    unsigned threads = 1;          // 0: one per CPU
    bool shared_listener = false;  // one listening socket for all threads instead of SO_REUSEPORT
    // HTTPS: certificate chains and their keys, pairwise; the first is the
    // default, the others are picked by the client's SNI.
    std::vector<std::string> tls_certs, tls_keys;
    std::size_t max_connections = 0;  // open at once, all threads together; 0: no limit
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
    app.add_option("--threads", o.threads, "threads, each with its own scheduler and server (0: one per CPU)")
        ->check(CLI::Range(0u, 1024u))
        ->capture_default_str();
    app.add_flag("--shared-listener", o.shared_listener,
                 "with --threads: all threads accept from one socket (default: one SO_REUSEPORT socket each)");
    app.add_option("--max-connections", o.max_connections,
                   "connections open at once, all threads together (0: no limit); at the limit new clients "
                   "wait in the listen backlog until one closes")
        ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 30))
        ->capture_default_str();
    app.add_option("--tls-cert", o.tls_certs,
                   "serve HTTPS with this certificate chain (PEM, leaf first); repeat with --tls-key for SNI");
    app.add_option("--tls-key", o.tls_keys, "the private key (PEM) of the --tls-cert given in the same position");
}

// The server's TLS context from --tls-cert/--tls-key, or null without them;
// a missing or unusable file is a usage error: message, exit 2.
inline std::shared_ptr<TlsContext> tls_or_exit(const std::string& name, const CommonOptions& o) {
    if (o.tls_certs.empty() && o.tls_keys.empty()) return nullptr;
    auto fail = [&](const std::string& why) {
        std::cerr << name << ": " << why << std::endl;
        std::exit(2);
    };
    if (o.tls_certs.size() != o.tls_keys.size())
        fail("--tls-cert and --tls-key come in pairs (" + std::to_string(o.tls_certs.size()) + " certificates, " +
             std::to_string(o.tls_keys.size()) + " keys)");
    auto made = TlsContext::server(o.tls_certs[0], o.tls_keys[0]);
    if (!made) fail(made.error);
    for (std::size_t i = 1; i < o.tls_certs.size(); ++i)
        if (std::string why = made->add_certificate(o.tls_certs[i], o.tls_keys[i]); !why.empty()) fail(why);
    return made.context;
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

// What an app's server is made of: a listener for this thread.
using MakeServer = std::function<std::unique_ptr<http::BaseHTTPServer>(Listener)>;

// The listening sockets, one per thread: bound here (thread 0) so that a
// bad --host or a taken port is an exit 2 before anything serves, and port
// 0 is settled once. SO_REUSEPORT sockets let the kernel spread connections
// over the threads; --shared-listener gives every thread the same socket
// (each watches a dup of it), the fallback where SO_REUSEPORT is missing.
// _Exit: this runs in a fiber, and exit() would tear down the thread's fiber
// stacks while still standing on one.
inline std::vector<int> bind_or_exit(const std::string& name, const CommonOptions& o, unsigned threads) {
    auto addrs = resolve(o.host, static_cast<std::uint16_t>(o.port), Deadline::after(std::chrono::seconds(10)));
    if (!addrs || addrs.value.empty()) {
        std::cerr << name << ": cannot resolve --host '" << o.host << "'" << std::endl;
        std::_Exit(2);
    }
    SocketAddress at = addrs.value.front();
    ListenOptions lo;
    lo.reuse_port = threads > 1 && !o.shared_listener;
    std::vector<int> fds;
    for (unsigned i = 0; i < threads; ++i) {
        Result<int> fd;
        if (i > 0 && o.shared_listener) {
            fd.value = ::fcntl(fds[0], F_DUPFD_CLOEXEC, 0);
            if (fd.value < 0) fd.status = Status::error, fd.error = errno;
        } else {
            fd = Listener::open_socket(at, lo);
        }
        if (!fd) {
            std::cerr << name << ": cannot listen on " << at.to_string() << ": " << describe(fd.status, fd.error)
                      << (lo.reuse_port && fd.error == ENOPROTOOPT ? " (no SO_REUSEPORT here: try --shared-listener)" : "")
                      << std::endl;
            std::_Exit(2);
        }
        fds.push_back(fd.value);
        if (i == 0) {
            SocketAddress bound;
            *bound.length_ptr() = SocketAddress::capacity();
            if (::getsockname(fd.value, bound.get(), bound.length_ptr()) == 0) at = bound;  // port 0: the one picked
        }
    }
    return fds;
}

// What an app does around its servers, on thread 0: `start` once every
// thread has its server and before the "listening on" line (comet joins its
// cluster there); `before_stop` once, when SIGINT or SIGTERM arrives, before
// the servers stop (comet releases its parked waiters there).
struct Lifecycle {
    std::function<void()> start;
    std::function<void()> before_stop;
};

// Run the app: bind, start a server on each of --threads threads, announce
// the one "listening on" line once all of them accept, serve until SIGINT
// or SIGTERM, then stop every server gracefully.
inline void run_servers(const std::string& name, const CommonOptions& o, MakeServer make_server,
                        Lifecycle lifecycle = {}) {
    unsigned n = o.threads ? o.threads : cpu_count();
    std::shared_ptr<TlsContext> tls = tls_or_exit(name, o);
    std::vector<int> fds;
    // Shared: the posted shutdown() may still be returning when serve_forever()
    // has (both are fibers of the server's thread); the last one to let go
    // destroys the server, on its own thread.
    std::vector<std::shared_ptr<http::BaseHTTPServer>> servers(n);
    Event bound;        // thread 0 has bound every socket
    WaitGroup serving;  // every thread has its server
    serving.add(static_cast<long>(n));
    auto grace = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(o.grace_seconds));
    // One limit for every thread's server: --max-connections is per process.
    std::shared_ptr<ConnectionLimit> limit;
    if (o.max_connections) limit = std::make_shared<ConnectionLimit>(o.max_connections, name, "--max-connections");
    run_threads(n, [&](unsigned index) {
        std::shared_ptr<SignalSet> signals;
        if (index == 0) {
            fds = bind_or_exit(name, o, n);
            bound.set();
            // The handlers go in before the line is printed: a signal sent the
            // moment a supervisor sees the line must already stop the servers.
            signals = std::make_shared<SignalSet>(std::initializer_list<int>{SIGINT, SIGTERM});
        } else {
            (void)bound.wait();
        }
        std::shared_ptr<http::BaseHTTPServer> server = make_server(Listener::adopt(fds[index]));
        server->config().access_log = !o.quiet;
        server->config().tls = tls;
        server->config().connection_limit = limit;
        server->config().header_timeout =
            std::chrono::duration_cast<Duration>(std::chrono::duration<double>(o.header_timeout_seconds));
        servers[index] = server;
        serving.done();
        if (index == 0) {
            (void)serving.wait();
            if (lifecycle.start) lifecycle.start();
            SocketAddress at = server->server_address();
            std::printf("listening on %s://%s\n", tls ? "https" : "http", at.to_string().c_str());
            std::fflush(stdout);
            go([&, signals] {
                (void)signals->wait();
                if (lifecycle.before_stop) lifecycle.before_stop();
                // Each server belongs to its thread: the stop is posted there.
                for (unsigned i = 0; i < n; ++i)
                    ThreadGroup::current()->post_to(i, [server = servers[i], grace] {
                        server->shutdown(Deadline::after(grace));
                    });
            }, FiberOptions{"signals"});
        }
        server->serve_forever();
        servers[index].reset();
    });
}

}  // namespace tendril::apps
