// echo: request/response round trips over loopback TCP.
//
// An echo server (TcpServer: a fiber per connection, read_some + write_all)
// and clients that each send a 64-byte message, wait for all of it to come
// back, and repeat -- for 1 connection and for 100, a fixed time (or count)
// each. Reports requests/s, latency, and the server's CPU seconds.
//
// By default the server is this same binary run as a child process
// (fork + exec with --server-only), and the clients run in the parent, so on
// a 2-core machine each side has a core and the server's CPU time is its own.
// --same-process runs server and clients in one thread instead (then the CPU
// figure is both sides together). --server-only and --connect HOST:PORT run
// the two halves by hand, e.g. pinned with taskset:
//
//   taskset -c 0 echo --server-only --listen 127.0.0.1:9000 &
//   taskset -c 1 echo --connect 127.0.0.1:9000 --server-pid $!
//
// Figures only: nothing here asserts on time.
#include "../apps/common/app.hpp"
#include "processes.hpp"

#include <tendril/net/listener.hpp>
#include <tendril/net/socket.hpp>
#include <tendril/net/tcp_server.hpp>
#include <tendril/sched/event.hpp>
#include <tendril/sched/scheduler.hpp>
#include <tendril/sched/signals.hpp>
#include <tendril/sched/wait_group.hpp>

#include <CLI/CLI.hpp>

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

using namespace tendril;

namespace {

struct Options {
    bool server_only = false;
    std::string listen = "127.0.0.1:0";
    std::string connect;
    int server_pid = 0;
    bool same_process = false;
    double duration = 3.0;
    long count = 0;
    std::vector<int> connections{1, 100};
    int size = 64;
    double timeout = 30;
};

using bench::Cpu;
using bench::machine_cpu;
using bench::MachineCpu;
using bench::process_cpu;
using bench::self_cpu;

// --- the server -----------------------------------------------------------------

void echo_connection(Socket& s, const SocketAddress&) {
    char buf[16 * 1024];
    for (;;) {
        IoResult r = s.read_some(buf, sizeof buf);
        if (!r.ok() || r.n == 0) return;
        if (!s.write_all(buf, r.n).ok()) return;
    }
}

int server_main(const Options& opt) {
    int rc = 0;
    run([&] {
        auto at = SocketAddress::parse(opt.listen);
        if (!at) {
            std::fprintf(stderr, "echo: cannot parse --listen '%s' (HOST:PORT, numeric)\n", opt.listen.c_str());
            rc = 2;
            return;
        }
        auto l = Listener::listen(*at);
        if (!l) {
            std::fprintf(stderr, "echo: cannot listen on %s: %s\n", opt.listen.c_str(), describe(l.status, l.error).c_str());
            rc = 1;
            return;
        }
        TcpServer server(std::move(l.value), echo_connection, TcpServerOptions{0, "echo"});
        SignalSet signals{SIGINT, SIGTERM};  // before the line: a supervisor may signal at once
        std::printf("listening on %s\n", server.local_address().to_string().c_str());
        std::fflush(stdout);
        auto stopper = go([&] {
            (void)signals.wait();
            server.shutdown(Deadline::after(std::chrono::seconds(1)));
        }, FiberOptions{"signals"});
        server.serve_forever();
        (void)stopper.join();
    });
    return rc;
}

// --- the clients ------------------------------------------------------------------

struct Phase {
    int connections = 0;
    long requests = 0;
    double seconds = 0;
    double mean_us = 0, p50_us = 0, p99_us = 0;
    Cpu server_cpu, client_cpu;
    double other_cpu = 0;  // busy CPU-seconds of the rest of the machine
    double softirq = 0;    // the machine's softirq time (loopback delivery, mostly ours)
    double steal = 0;
    long errors = 0;
    std::string first_error;
};

double percentile(std::vector<float>& v, double q) {
    if (v.empty()) return 0;
    auto k = static_cast<std::size_t>(q * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
}

Phase run_phase(const SocketAddress& at, int nconn, const Options& opt, pid_t server_pid) {
    Phase ph;
    ph.connections = nconn;
    auto error = [&ph](const std::string& what) {
        if (ph.errors++ == 0) ph.first_error = what;
    };

    std::vector<Socket> socks;
    for (int i = 0; i < nconn; ++i) {
        auto r = Socket::connect(at, Deadline::after(std::chrono::seconds(5)));
        if (!r) {
            error("connect: " + describe(r.status, r.error));
            return ph;
        }
        socks.push_back(std::move(r.value));
    }

    Event start;
    WaitGroup done;
    Instant end{};
    std::vector<std::vector<float>> lat(static_cast<std::size_t>(nconn));
    std::vector<FiberHandle> clients;
    const auto size = static_cast<std::size_t>(opt.size);
    for (int i = 0; i < nconn; ++i) {
        done.add();
        clients.push_back(go([&, i] {
            Socket& s = socks[static_cast<std::size_t>(i)];
            std::vector<char> msg(size), back(size);
            for (std::size_t k = 0; k < size; ++k) msg[k] = static_cast<char>('a' + (i + k) % 26);
            auto& mine = lat[static_cast<std::size_t>(i)];
            mine.reserve(opt.count > 0 ? static_cast<std::size_t>(opt.count) : 1 << 14);
            if (start.wait() == Status::ok) {
                Instant t = Clock::now();
                for (long n = 0; opt.count > 0 ? n < opt.count : t < end; ++n) {
                    IoResult w = s.write_all(msg.data(), size);
                    if (!w) {
                        error("write: " + describe(w.status, w.error));
                        break;
                    }
                    IoResult r = s.read_exact(back.data(), size);
                    if (!r) {
                        error("read: " + describe(r.status, r.error));
                        break;
                    }
                    Instant t2 = Clock::now();
                    if (std::memcmp(msg.data(), back.data(), size) != 0) error("the echo differs from the message");
                    mine.push_back(std::chrono::duration<float, std::micro>(t2 - t).count());
                    t = t2;
                }
            }
            done.done();
        }, FiberOptions{"client"}));
    }
    // A watchdog, so that a stuck server cannot hold the run forever.
    Instant limit_at = Clock::now() + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(
                                          (opt.count > 0 ? 0 : opt.duration) + opt.timeout));
    auto watchdog = go([&] {
        if (sleep_until(Deadline::at(limit_at)) != Status::ok) return;
        error("timed out");
        for (auto& c : clients) c.cancel();
    }, FiberOptions{"watchdog"});

    yield();  // let every client reach start.wait()
    Cpu s0 = process_cpu(server_pid);
    Cpu c0 = self_cpu();
    MachineCpu m0 = machine_cpu();
    Instant t0 = Clock::now();
    end = t0 + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(opt.duration));
    start.set();
    (void)done.wait();
    ph.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    ph.client_cpu = self_cpu() - c0;
    ph.server_cpu = process_cpu(server_pid) - s0;
    MachineCpu m1 = machine_cpu();
    // In --connect mode without --server-pid the server's CPU lands here.
    ph.other_cpu = std::max(0.0, m1.busy - m0.busy - ph.client_cpu.total() - ph.server_cpu.total());
    ph.steal = m1.steal - m0.steal;
    ph.softirq = m1.softirq - m0.softirq;
    watchdog.cancel();
    (void)watchdog.join();
    for (auto& s : socks) s.close();

    std::vector<float> all;
    double sum = 0;
    for (auto& v : lat) {
        for (float x : v) sum += x;
        all.insert(all.end(), v.begin(), v.end());
    }
    ph.requests = static_cast<long>(all.size());
    if (!all.empty()) {
        ph.mean_us = sum / static_cast<double>(all.size());
        ph.p50_us = percentile(all, 0.50);
        ph.p99_us = percentile(all, 0.99);
    }
    return ph;
}

// --- the report ----------------------------------------------------------------------

std::string thousands(double v) {
    char b[64];
    std::snprintf(b, sizeof b, "%.0f", v);
    std::string s = b, out;
    int k = 0;
    for (auto it = s.rbegin(); it != s.rend(); ++it) {
        if (k && k % 3 == 0 && *it != '-') out.insert(out.begin(), ',');
        out.insert(out.begin(), *it);
        ++k;
    }
    return out;
}

void print_report(const std::vector<Phase>& phases, const Options& opt, const std::string& where,
                  const SocketAddress& at, bool server_cpu_known, bool same_process) {
    std::printf("\n tendril echo benchmark   %d-byte messages, ping-pong (send, wait for the whole echo, repeat)\n",
                opt.size);
    std::printf(" server: %s, %s\n", where.c_str(), at.to_string().c_str());
    if (opt.count > 0) std::printf(" %ld requests per connection;", opt.count);
    else std::printf(" %.1f s per run;", opt.duration);
    std::printf(" %ld CPUs, %s poller\n", ::sysconf(_SC_NPROCESSORS_ONLN), Scheduler::poller_backend());
    std::printf(" %s\n", std::string(132, '-').c_str());
    std::printf(" %5s %11s %7s %12s %10s %9s %9s %13s %13s %13s %8s %10s\n", "conns", "requests", "secs", "requests/s",
                "mean lat", "p50", "p99", same_process ? "process CPU" : "server CPU", "req/srv-CPU-s",
                "client CPU", "softirq", "other CPU");
    for (const Phase& p : phases) {
        double rps = p.seconds > 0 ? static_cast<double>(p.requests) / p.seconds : 0;
        char scpu[32] = "-", per[32] = "-", ccpu[32];
        if (server_cpu_known) {
            std::snprintf(scpu, sizeof scpu, "%.2f s %3.0f%%", p.server_cpu.total(),
                          p.seconds > 0 ? 100 * p.server_cpu.total() / p.seconds : 0.0);
            if (p.server_cpu.total() > 0)
                std::snprintf(per, sizeof per, "%s", thousands(static_cast<double>(p.requests) / p.server_cpu.total()).c_str());
        }
        std::snprintf(ccpu, sizeof ccpu, "%.2f s %3.0f%%", p.client_cpu.total(),
                      p.seconds > 0 ? 100 * p.client_cpu.total() / p.seconds : 0.0);
        if (same_process) {
            std::snprintf(scpu, sizeof scpu, "%s", ccpu);
            if (p.client_cpu.total() > 0)
                std::snprintf(per, sizeof per, "%s", thousands(static_cast<double>(p.requests) / p.client_cpu.total()).c_str());
            std::snprintf(ccpu, sizeof ccpu, "(same)");
        }
        char other[32], soft[32];
        std::snprintf(other, sizeof other, "%.2f s", p.other_cpu);
        std::snprintf(soft, sizeof soft, "%.2f s", p.softirq);
        std::printf(" %5d %11s %7.2f %12s %7.1f us %6.1f us %6.1f us %13s %13s %13s %8s %10s\n", p.connections,
                    thousands(static_cast<double>(p.requests)).c_str(), p.seconds, thousands(rps).c_str(), p.mean_us,
                    p.p50_us, p.p99_us, scpu, per, ccpu, soft, other);
        if (p.steal > 0.05 * p.seconds)
            std::printf("       the hypervisor stole %.2f CPU-s during this run\n", p.steal);
        if (p.errors) std::printf("       %ld error(s); the first: %s\n", p.errors, p.first_error.c_str());
    }
    std::printf("\n   server CPU     user + sys seconds of the server process during the run (%% of the run's wall time)\n"
                "   req/srv-CPU-s  requests per CPU-second the server spent: its efficiency, whoever is the bottleneck\n"
                "   latency        one request: write_all of the message to the last byte of its echo read back\n"
                "   softirq        the machine's softirq CPU-seconds meanwhile: mostly loopback delivery done on behalf\n"
                "                  of server and clients but charged to no process (not in their CPU figures)\n"
                "   other CPU      busy CPU-seconds of everything else on the machine meanwhile (other processes):\n"
                "                  well above 0 means the figures were taken on a busy machine\n");
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"echo: 64-byte request/response round trips over loopback TCP, server in a child process by default",
                 "echo"};
    Options opt;
    app.add_flag("--server-only", opt.server_only, "only run the echo server (prints `listening on HOST:PORT`, stops on "
                                                   "SIGINT/SIGTERM)");
    app.add_option("--listen", opt.listen, "with --server-only: where to listen (port 0 picks a free one)")
        ->capture_default_str();
    auto* connect = app.add_option("--connect", opt.connect, "only run the clients, against the server at HOST:PORT");
    app.add_option("--server-pid", opt.server_pid, "with --connect: the server's pid, to report its CPU time")
        ->needs(connect);
    app.add_flag("--same-process", opt.same_process, "server and clients in one process and thread");
    app.add_option("-d,--duration", opt.duration, "seconds per run")->check(CLI::Range(0.05, 3600.0))->capture_default_str();
    app.add_option("--count", opt.count, "requests per connection instead of a duration (0: use the duration)")
        ->check(CLI::Range(0L, 1000000000L))
        ->capture_default_str();
    app.add_option("-c,--connections", opt.connections, "connection counts to run, e.g. 1,100")
        ->delimiter(',')
        ->check(CLI::Range(1, 20000))
        ->capture_default_str();
    app.add_option("--size", opt.size, "message bytes")->check(CLI::Range(1, 1 << 20))->capture_default_str();
    app.add_option("--timeout", opt.timeout, "seconds a run may overrun before its clients are cancelled")
        ->capture_default_str();
    tendril::apps::parse_or_exit(app, argc, argv);
    ::signal(SIGPIPE, SIG_IGN);
    if (opt.server_only) return server_main(opt);
    if (!opt.connect.empty() && opt.same_process) {
        std::cerr << "echo: --connect and --same-process exclude each other\n";
        return 2;
    }

    std::vector<Phase> phases;
    std::string where;
    SocketAddress at;
    bool cpu_known = false;
    int rc = 0;

    if (opt.same_process) {
        where = "TcpServer in this process and thread, with the clients";
        run([&] {
            auto l = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
            if (!l) {
                std::fprintf(stderr, "echo: cannot listen: %s\n", describe(l.status, l.error).c_str());
                rc = 1;
                return;
            }
            TcpServer server(std::move(l.value), echo_connection, TcpServerOptions{0, "echo"});
            at = server.local_address();
            auto srv = go([&] { server.serve_forever(); }, FiberOptions{"server"});
            for (int n : opt.connections) phases.push_back(run_phase(at, n, opt, -1));
            server.shutdown(Deadline::after(std::chrono::seconds(1)));
            (void)srv.join();
        });
    } else if (!opt.connect.empty()) {
        auto a = SocketAddress::parse(opt.connect);
        if (!a) {
            std::fprintf(stderr, "echo: cannot parse --connect '%s' (HOST:PORT, numeric)\n", opt.connect.c_str());
            return 2;
        }
        at = *a;
        cpu_known = opt.server_pid > 0;
        where = cpu_known ? "external (pid " + std::to_string(opt.server_pid) + ")" : "external";
        run([&] {
            for (int n : opt.connections) phases.push_back(run_phase(at, n, opt, opt.server_pid));
        });
    } else {
        bench::ServerProcess server;
        try {
            std::string exe = bench::self_exe();
            server = bench::ServerProcess::start({.argv = {exe, "--server-only", "--listen", "127.0.0.1:0"},
                                                  .grace = std::chrono::seconds(3),
                                                  .die_with_parent = true,
                                                  .name = "the server child"});
        } catch (const std::exception& e) {
            std::fprintf(stderr, "echo: %s\n", e.what());
            return 1;
        }
        at = server.address;
        cpu_known = true;
        where = "TcpServer in a child process (pid " + std::to_string(server.pid) + ", 1 thread), clients in this one";
        run([&] {
            for (int n : opt.connections) phases.push_back(run_phase(at, n, opt, server.pid));
        });
        int st = server.stop();
        if (st != 0) std::fprintf(stderr, "echo: the server child exited with status %d\n", st);
    }
    print_report(phases, opt, where, at, cpu_known, opt.same_process);
    for (const Phase& p : phases)
        if (p.errors) rc = 1;
    return rc;
}
