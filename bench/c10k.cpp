// c10k: the seed's comet test, ported and extended -- tendril's main job.
//
// N clients send `GET /wait HTTP/1.0` to a comet server and park; a
// controller polls `GET /` on fresh connections until the server counts N
// waiters, sends one `GET /notify`, checks that every waiter receives
// n == N, then polls until the count is back to 0. The server runs in its
// own process (comet from this build by default, or any --server command
// that prints the `listening on` line), so its CPU seconds and resident
// memory are its own; --same-process runs server and clients in one thread,
// exactly as the seed did.
//
// Clients connect from 127.0.0.2..127.0.0.17 (IP_BIND_ADDRESS_NO_PORT), so
// that beyond ~14,000 connections to one port connect() does not spend its
// time hunting for a free local port.
#include "../apps/comet/comet_handler.hpp"
#include "../apps/common/app.hpp"
#include "processes.hpp"

#include <tendril/http/client.hpp>
#include <tendril/http/server.hpp>
#include <tendril/net/listener.hpp>
#include <tendril/sched/scheduler.hpp>
#include <tendril/sched/semaphore.hpp>
#include <tendril/sched/wait_group.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <string>

using namespace tendril;

namespace {

struct Options {
    int n = 10000;
    bool same_process = false;
    std::string server_cmd;
    std::string label;
    bool json = false;
    double timeout = 300;
    int sources = 16;
    int max_connecting = 1000;
    bool print_max_n = false;
    unsigned threads = 1;  // this build's comet: --threads
    int nodes = 1;         // this build's comets, clients spread over them
    bool redis = false;    // a redis-server of our own; the comets run with --redis
    bool tls = false;      // HTTPS: a certificate of our own; the comets run with --tls-cert/--tls-key
};

// Every client's options: keep-alive off (one request each); with --tls, HTTPS
// verified against the benchmark's own certificate.
http::ClientOptions g_client_options = [] {
    http::ClientOptions o;
    o.keep_alive = false;
    return o;
}();

using bench::Cpu;
using bench::process_cpu;
using bench::rss_kib;
using bench::self_cpu;

// --- the clients --------------------------------------------------------------------

struct Tally {
    int connected = 0;
    int waiting = 0;  // got the response head: parked on the server
    int done = 0;     // got the right body
    int errors = 0;
    std::map<std::string, int> kinds;
    std::vector<Instant> last_done;  // per node: when its last waiter got the right body
    void error(const std::string& kind) {
        ++errors;
        ++kinds[kind];
    }
};

std::string body_of(http::Client& c, std::string_view target, Deadline d, int* status) {
    http::Request req;
    req.target = std::string(target);
    req.headers.add("Connection", "close");
    auto r = c.request(req, d);
    *status = r ? r->status : 0;
    return r ? r->body : std::string();
}

// Ask the server for its waiter count on a fresh connection.
long count_waiters(const SocketAddress& at, Deadline d) {
    http::Client c(at, g_client_options);
    int status = 0;
    std::string b = body_of(c, "/", d, &status);
    if (status != 200) return -1;
    try {
        return std::stol(b);
    } catch (...) {
        return -1;
    }
}

// The processes measured: the comet nodes (one without --nodes) and Redis.
struct Servers {
    std::vector<pid_t> nodes;  // empty: the server runs in this process
    pid_t redis = -1;
};

// Their CPU seconds at one moment.
struct CpuSample {
    std::vector<Cpu> nodes;
    Cpu redis;
    Cpu total() const {
        Cpu t;
        for (const Cpu& c : nodes) t = {t.user + c.user, t.sys + c.sys};
        return t;
    }
};

CpuSample sample(const Servers& s) {
    CpuSample out;
    for (pid_t p : s.nodes) out.nodes.push_back(process_cpu(p));
    out.redis = process_cpu(s.redis);
    return out;
}

struct Phases {
    double to_all_waiting = 0, notify_to_done = 0, to_zero = 0, total = 0;
};

struct Report {
    Options opt;
    std::string server_label;
    Tally tally;
    Phases t;
    std::vector<double> node_done;  // per node: seconds from the notify to its last waiter's body
    Cpu server_cpu, server_cpu_waiting, server_cpu_notify, client_cpu;
    CpuSample at_start, at_waiting, before_notify, at_end;  // per node and Redis
    long rss_idle = 0, rss_parked = 0;
    long notify_body = -1;
    int server_exit = -1;
    bool same_process = false;
};

void progress(const Tally& t, int n, bool final) {
    static bool tty = ::isatty(2);
    if (!tty) return;
    std::fprintf(stderr, "\r  connected %6d/%d   waiting %6d   notified %6d   errors %d%s", t.connected, n, t.waiting,
                 t.done, t.errors, final ? "\n" : "   ");
    std::fflush(stderr);
}

// Waiter i goes to nodes[i % nodes.size()]; "all waiting" is every node
// counting N (with --redis each counts the whole cluster); the notify goes
// to the first node.
void run_clients(const std::vector<SocketAddress>& nodes, const Options& opt, Report& rep,
                 const std::function<void()>& after_waiting, const Servers& servers) {
    const SocketAddress& first = nodes.front();
    Tally& tally = rep.tally;
    Deadline deadline = Deadline::after(std::chrono::duration_cast<Duration>(std::chrono::duration<double>(opt.timeout)));
    WaitGroup all;
    Semaphore connecting(static_cast<std::size_t>(opt.max_connecting));
    bool loopback4 = first.family() == AF_INET && first.host().rfind("127.", 0) == 0;
    auto counts_are = [&](long n) {
        for (const SocketAddress& a : nodes)
            if (count_waiters(a, deadline) != n) return false;
        return true;
    };
    bool stop_ticker = false;
    auto ticker = go([&] {
        while (!stop_ticker) {
            progress(tally, opt.n, false);
            if (sleep_for(std::chrono::milliseconds(100)) != Status::ok) break;
        }
    }, FiberOptions{"progress"});

    Instant t0 = Clock::now();
    rep.at_start = sample(servers);
    tally.last_done.assign(nodes.size(), Instant{});
    for (int i = 0; i < opt.n; ++i) {
        all.add();
        go([&, i] {
            http::ClientOptions co = g_client_options;
            if (loopback4 && opt.sources > 0)
                co.connect.source = *SocketAddress::ip("127.0.0." + std::to_string(2 + i % opt.sources), 0);
            http::Client c(nodes[static_cast<std::size_t>(i) % nodes.size()], co);
            http::Request req;
            req.target = "/wait";
            req.version_minor = 0;  // HTTP/1.0: a close-delimited answer, as in the seed
            bool holding = connecting.acquire(deadline) == Status::ok;
            Status st = c.send_head(req, std::nullopt, false, deadline);
            if (st != Status::ok) {
                tally.error("connect/send: " + c.last_error());
            } else {
                ++tally.connected;
                auto head = c.read_head(deadline);
                if (holding) connecting.release(), holding = false;
                if (!head) {
                    tally.error("response head: " + c.last_error());
                } else if (head->status != 200) {
                    tally.error("status " + std::to_string(head->status));
                } else {
                    ++tally.waiting;
                    auto body = c.read_body_all(deadline);
                    if (!body) tally.error("body: " + c.last_error());
                    else if (body.value != std::to_string(opt.n)) tally.error("wrong body '" + body.value.substr(0, 20) + "'");
                    else {
                        ++tally.done;
                        tally.last_done[static_cast<std::size_t>(i) % nodes.size()] = Clock::now();
                    }
                }
            }
            if (holding) connecting.release();
            all.done();
        }, FiberOptions{"waiter"});
        if (i % 256 == 255) yield();  // let connections start while spawning
    }

    // The controller: all waiting?
    long seen = -1;
    while (!deadline.expired()) {
        seen = count_waiters(first, deadline);
        if (seen == opt.n && (nodes.size() == 1 || counts_are(opt.n))) break;
        if (tally.errors + tally.waiting >= opt.n && tally.errors > 0 && seen >= 0 && seen < opt.n) break;
        (void)sleep_for(std::chrono::milliseconds(10));
    }
    Instant t_waiting = Clock::now();
    rep.t.to_all_waiting = std::chrono::duration<double>(t_waiting - t0).count();
    rep.at_waiting = sample(servers);
    after_waiting();  // memory sample (after a short settle)

    rep.before_notify = sample(servers);
    Instant t_notify = Clock::now();
    http::Client ctl(first, g_client_options);
    int status = 0;
    std::string nb = body_of(ctl, "/notify", deadline, &status);
    try {
        rep.notify_body = status == 200 ? std::stol(nb) : -1;
    } catch (...) {
        rep.notify_body = -1;
    }
    if (rep.notify_body != opt.n)
        tally.error(status == 0 ? "notify failed: " + ctl.last_error() : "notify answered '" + nb.substr(0, 20) + "'");
    (void)all.wait(deadline);
    Instant t_done = Clock::now();
    rep.t.notify_to_done = std::chrono::duration<double>(t_done - t_notify).count();
    for (Instant t : tally.last_done)
        rep.node_done.push_back(t == Instant{} ? -1 : std::chrono::duration<double>(t - t_notify).count());
    while (!deadline.expired() && !counts_are(0)) (void)sleep_for(std::chrono::milliseconds(10));
    Instant t_zero = Clock::now();
    rep.t.to_zero = std::chrono::duration<double>(t_zero - t_done).count();
    rep.t.total = std::chrono::duration<double>(t_zero - t0).count();
    rep.at_end = sample(servers);
    rep.server_cpu_waiting = rep.at_waiting.total() - rep.at_start.total();
    rep.server_cpu_notify = rep.at_end.total() - rep.before_notify.total();
    rep.server_cpu = rep.at_end.total() - rep.at_start.total();
    int missing = opt.n - tally.done - tally.errors;
    if (missing > 0) tally.error("no answer by the deadline (" + std::to_string(missing) + ")");
    stop_ticker = true;
    ticker.cancel();
    (void)ticker.join();
    progress(tally, opt.n, true);
}

// --- limits ----------------------------------------------------------------------------

rlim_t raise_fd_limit() {
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    return lim.rlim_cur;
}

constexpr int kReserveFds = 64;  // stdio, epoll, eventfd, listener, controller, slack

int largest_n(rlim_t limit, bool same_process) {
    long usable = static_cast<long>(limit) - kReserveFds;
    return static_cast<int>(same_process ? usable / 2 : usable);
}

// --- reporting -------------------------------------------------------------------------

constexpr double kSeedTotal = 15.67, kSeedUser = 10.567, kSeedSys = 3.344;

void print_report(const Report& r) {
    const Options& o = r.opt;
    std::printf("\n tendril c10k comet benchmark   N = %d   server: %s\n", o.n, r.server_label.c_str());
    std::printf(" %s\n", std::string(78, '-').c_str());
    std::printf(" %-34s %d ok, %d errors\n", "result", r.tally.done, r.tally.errors);
    for (auto& [k, v] : r.tally.kinds) std::printf(" %-34s %d x %s\n", "", v, k.c_str());
    std::printf(" %-34s %.3f s\n", "time until all N waiting", r.t.to_all_waiting);
    std::printf(" %-34s %.3f s\n", "time from notify to all done", r.t.notify_to_done);
    std::printf(" %-34s %.3f s\n", "time until the count is 0 again", r.t.to_zero);
    std::printf(" %-34s %.3f s\n", "total", r.t.total);
    if (!r.same_process) {
        const Cpu& c = r.server_cpu;
        std::printf(" %-34s %.3f s  (user %.3f + sys %.3f; user share %.0f%%)\n", "server CPU", c.total(), c.user,
                    c.sys, c.total() > 0 ? 100 * c.user / c.total() : 0.0);
        std::printf(" %-34s %.3f s until all waiting, %.3f s for notify and after\n", "", r.server_cpu_waiting.total(),
                    r.server_cpu_notify.total());
        if (o.nodes > 1 || o.redis) {
            for (std::size_t k = 0; k < r.at_end.nodes.size(); ++k) {
                Cpu all = r.at_end.nodes[k] - r.at_start.nodes[k];
                Cpu notify = r.at_end.nodes[k] - r.before_notify.nodes[k];
                std::printf(" %-34s %.3f s  (user %.3f + sys %.3f), %.3f s of it for notify and after; "
                            "its last waiter done %.3f s after the notify\n",
                            ("  node" + std::to_string(k) + (k == 0 ? " (notified)" : "")).c_str(), all.total(), all.user,
                            all.sys, notify.total(), k < r.node_done.size() ? r.node_done[k] : -1.0);
            }
            Cpu redis = r.at_end.redis - r.at_start.redis;
            std::printf(" %-34s %.3f s  (user %.3f + sys %.3f), %.3f s of it for notify and after\n", "redis-server CPU",
                        redis.total(), redis.user, redis.sys, (r.at_end.redis - r.before_notify.redis).total());
        }
        std::printf(" %-34s idle %.1f MiB, %d parked %.1f MiB\n", "server resident memory", r.rss_idle / 1024.0, o.n,
                    r.rss_parked / 1024.0);
        std::printf(" %-34s %.0f bytes (%.2f KiB)\n", "per parked connection",
                    1024.0 * (r.rss_parked - r.rss_idle) / o.n, (r.rss_parked - r.rss_idle) / double(o.n));
        std::printf(" %-34s user %.3f s, sys %.3f s\n", "client (this process) CPU", r.client_cpu.user,
                    r.client_cpu.sys);
        std::printf(" %-34s %d\n", "server exit status after SIGTERM", r.server_exit);
    } else {
        const Cpu& c = r.client_cpu;
        std::printf(" %-34s %.3f s  (user %.3f + sys %.3f; user share %.0f%%)\n", "process CPU (server + clients)",
                    c.total(), c.user, c.sys, c.total() > 0 ? 100 * c.user / c.total() : 0.0);
        std::printf(" %-34s idle %.1f MiB, parked %.1f MiB (server and clients together)\n", "process memory",
                    r.rss_idle / 1024.0, r.rss_parked / 1024.0);
    }
    std::printf(" %-34s 10000 clients, total %.2f s, user %.3f s, sys %.3f s (Python 2 + greenlet, 2009 laptop, "
                "one process)\n", "the seed's published figure", kSeedTotal, kSeedUser, kSeedSys);
}

nlohmann::json to_json(const Report& r) {
    nlohmann::json j;
    j["n"] = r.opt.n;
    j["server"] = r.server_label;
    j["same_process"] = r.same_process;
    j["ok"] = r.tally.done;
    j["errors"] = r.tally.errors;
    j["error_kinds"] = r.tally.kinds;
    j["seconds"] = {{"to_all_waiting", r.t.to_all_waiting}, {"notify_to_done", r.t.notify_to_done},
                    {"to_zero", r.t.to_zero}, {"total", r.t.total}};
    j["server_cpu"] = {{"user", r.server_cpu.user}, {"sys", r.server_cpu.sys}, {"total", r.server_cpu.total()},
                       {"until_waiting", r.server_cpu_waiting.total()}, {"notify_and_after", r.server_cpu_notify.total()}};
    j["server_rss_kib"] = {{"idle", r.rss_idle}, {"parked", r.rss_parked}};
    j["bytes_per_parked_connection"] = r.opt.n ? 1024.0 * (r.rss_parked - r.rss_idle) / r.opt.n : 0;
    j["client_cpu"] = {{"user", r.client_cpu.user}, {"sys", r.client_cpu.sys}};
    if (r.opt.nodes > 1 || r.opt.redis) {
        j["nodes"] = nlohmann::json::array();
        for (std::size_t k = 0; k < r.at_end.nodes.size(); ++k)
            j["nodes"].push_back({{"cpu", (r.at_end.nodes[k] - r.at_start.nodes[k]).total()},
                                  {"last_done_after_notify", k < r.node_done.size() ? r.node_done[k] : -1.0},
                                  {"cpu_notify_and_after", (r.at_end.nodes[k] - r.before_notify.nodes[k]).total()}});
        j["redis_cpu"] = {{"total", (r.at_end.redis - r.at_start.redis).total()},
                          {"notify_and_after", (r.at_end.redis - r.before_notify.redis).total()}};
    }
    j["server_exit"] = r.server_exit;
    j["seed"] = {{"n", 10000}, {"total", kSeedTotal}, {"user", kSeedUser}, {"sys", kSeedSys}};
    return j;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"c10k: the seed's comet test -- N long-poll clients, one notify, every client must get n == N", "c10k"};
    Options opt;
    app.add_option("-n,--clients", opt.n, "number of waiting clients")->check(CLI::Range(1, 1000000))->capture_default_str();
    app.add_flag("--same-process", opt.same_process, "server and clients in one process and thread, as the seed ran it");
    app.add_option("--server", opt.server_cmd, "run this command as the server instead of this build's comet (it must "
                                               "pick a free port and print `listening on http://HOST:PORT`)");
    app.add_option("--label", opt.label, "the server's name in the report");
    app.add_flag("--json", opt.json, "print the report as JSON on stdout");
    app.add_option("--timeout", opt.timeout, "seconds before giving up")->capture_default_str();
    app.add_option("--sources", opt.sources, "source addresses 127.0.0.2.. to spread client connections over")
        ->capture_default_str();
    app.add_option("--max-connecting", opt.max_connecting, "connections in progress at once")->capture_default_str();
    app.add_option("--threads", opt.threads, "threads of this build's comet server (0: one per CPU)")
        ->check(CLI::Range(0u, 1024u))
        ->capture_default_str();
    app.add_option("--nodes", opt.nodes, "comet processes (with --redis), the clients spread over them")
        ->check(CLI::Range(1, 64))
        ->capture_default_str();
    app.add_flag("--redis", opt.redis, "start a redis-server and run the comets as one cluster over it (comet --redis)");
    app.add_flag("--tls", opt.tls, "HTTPS: make a certificate (with the openssl tool) and run the comets with it");
    app.add_flag("--print-max-n", opt.print_max_n, "print the largest N the open-files limit allows, and exit");
    tendril::apps::parse_or_exit(app, argc, argv);
    ::signal(SIGPIPE, SIG_IGN);
    rlim_t limit = raise_fd_limit();
    int max_n = largest_n(limit, opt.same_process);
    if (opt.print_max_n) {
        std::printf("%d\n", max_n);
        return 0;
    }
    if (opt.n > max_n) {
        std::fprintf(stderr,
                     "c10k: N = %d is too large: this process may open %llu files (ulimit -n), and %s needs %s per "
                     "client plus %d; the largest N here is %d%s\n",
                     opt.n, static_cast<unsigned long long>(limit), opt.same_process ? "--same-process" : "the client side",
                     opt.same_process ? "two descriptors" : "one descriptor", kReserveFds, max_n,
                     opt.same_process ? " (without --same-process the server gets its own process and N can double)" : "");
        return 2;
    }

    if (opt.nodes > 1 && !opt.redis) {
        std::fprintf(stderr, "c10k: --nodes needs --redis (the nodes count and notify together through Redis)\n");
        return 2;
    }
    if ((opt.threads != 1 || opt.nodes > 1 || opt.redis || opt.tls) && (opt.same_process || !opt.server_cmd.empty())) {
        std::fprintf(stderr, "c10k: --threads, --nodes, --redis and --tls are for this build's comet in its own "
                             "process (not with --same-process or --server)\n");
        return 2;
    }
    Report rep;
    rep.opt = opt;
    rep.same_process = opt.same_process;
    if (!opt.same_process) {
        std::string cmd = opt.server_cmd;
        bench::ServerProcess redis;
        if (opt.redis) {
            std::string exe = bench::find_program("redis-server");
            if (exe.empty()) {
                std::fprintf(stderr, "c10k: --redis needs redis-server (Debian: redis-server; `make deps-bench`)\n");
                return 2;
            }
            SocketAddress at = *SocketAddress::ip("127.0.0.1", bench::free_port());
            try {
                redis = bench::ServerProcess::start_listening_on(
                    {.argv = {exe, "--port", std::to_string(at.port()), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"},
                     .grace = std::chrono::seconds(5),
                     .die_with_parent = true,
                     .name = "redis-server"},
                    at);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "c10k: %s\n", e.what());
                return 1;
            }
        }
        std::string tls_dir;
        if (opt.tls) {
            char tmpl[] = "/tmp/c10k-tls-XXXXXX";
            tls_dir = ::mkdtemp(tmpl) ? tmpl : "";
            std::string make_cert = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
                                    "-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout " +
                                    tls_dir + "/key.pem -out " + tls_dir + "/cert.pem >/dev/null 2>&1";
            TlsContext::Made made;
            if (tls_dir.empty() || std::system(make_cert.c_str()) != 0 || !(made = TlsContext::client(tls_dir + "/cert.pem"))) {
                std::fprintf(stderr, "c10k: --tls needs the openssl tool to make a certificate%s%s\n",
                             made.error.empty() ? "" : ": ", made.error.c_str());
                if (!tls_dir.empty()) (void)std::system(("rm -rf " + tls_dir).c_str());
                redis.stop();
                return 2;
            }
            g_client_options.tls = made.context;
            g_client_options.server_name = "localhost";
        }
        if (cmd.empty()) {
            unsigned threads = opt.threads ? opt.threads : cpu_count();
            std::string exe = bench::self_exe();
            cmd = exe.substr(0, exe.rfind('/')) + "/../apps/comet --port 0 --quiet --threads " + std::to_string(threads);
            if (opt.tls) cmd += " --tls-cert " + tls_dir + "/cert.pem --tls-key " + tls_dir + "/key.pem";
            std::string nodes = opt.nodes > 1 || opt.redis
                                    ? " x " + std::to_string(opt.nodes) + (opt.nodes == 1 ? " node" : " nodes") +
                                          (opt.redis ? " over Redis" : "")
                                    : "";
            rep.server_label = opt.label.empty()
                                   ? "tendril comet (" + std::to_string(threads) + (threads == 1 ? " thread, " : " threads, ") +
                                         std::string(Scheduler::poller_backend()) + (opt.tls ? ", HTTPS" : "") + ")" + nodes
                                   : opt.label;
        } else {
            rep.server_label = opt.label.empty() ? cmd : opt.label;
        }
        std::vector<bench::ServerProcess> nodes;
        Servers servers;
        std::vector<SocketAddress> addresses;
        for (int k = 0; k < opt.nodes; ++k) {
            std::string node_cmd = cmd;
            if (opt.redis)
                node_cmd += " --redis " + redis.address.to_string() + " --node node" + std::to_string(k);
            try {
                // `exec`: the shell becomes the server, so that its pid is the one measured and signalled.
                nodes.push_back(bench::ServerProcess::start({.argv = {"/bin/sh", "-c", "exec " + node_cmd},
                                                             .announce = opt.tls ? "listening on https://" : "listening on http://",
                                                             .startup = std::chrono::seconds(20),
                                                             .grace = std::chrono::seconds(10),
                                                             .own_process_group = true}));
            } catch (const std::exception& e) {
                std::fprintf(stderr, "c10k: %s\n  command: %s\n", e.what(), node_cmd.c_str());
                for (auto& n : nodes) n.stop();
                redis.stop();
                if (!tls_dir.empty()) (void)std::system(("rm -rf " + tls_dir).c_str());
                return 1;
            }
            servers.nodes.push_back(nodes.back().pid);
            addresses.push_back(nodes.back().address);
        }
        servers.redis = redis.pid;
        ::usleep(200000);  // let the servers settle before measuring their idle state
        for (pid_t p : servers.nodes) rep.rss_idle += rss_kib(p);
        Cpu c0 = self_cpu();
        run([&] {
            run_clients(addresses, opt, rep, [&] {
                (void)sleep_for(std::chrono::milliseconds(300));  // parked stacks get compacted after 20 ms
                for (pid_t p : servers.nodes) rep.rss_parked += rss_kib(p);
            }, servers);
        });
        rep.client_cpu = self_cpu() - c0;
        rep.server_exit = 0;
        for (auto& n : nodes) {
            int st = n.stop();
            if (st != 0) rep.server_exit = st;
        }
        redis.stop();
        if (!tls_dir.empty()) (void)std::system(("rm -rf " + tls_dir).c_str());
    } else {
        rep.server_label = opt.label.empty() ? "tendril comet in this process and thread" : opt.label;
        Cpu c0 = self_cpu();
        run([&] {
            comet::Waiters waiters;
            auto l = Listener::listen(*SocketAddress::ip("127.0.0.1", 0));
            if (!l) {
                std::fprintf(stderr, "c10k: cannot listen: %s\n", describe(l.status, l.error).c_str());
                return;
            }
            http::ServerConfig cfg;
            cfg.access_log = false;
            http::HTTPServer<comet::CometHandler> server(std::move(l.value), [&] {
                return std::make_unique<comet::CometHandler>(waiters);
            }, cfg);
            auto srv = go([&] { server.serve_forever(); }, FiberOptions{"server"});
            rep.rss_idle = rss_kib(::getpid());
            run_clients({server.server_address()}, opt, rep, [&] {
                (void)sleep_for(std::chrono::milliseconds(300));
                rep.rss_parked = rss_kib(::getpid());
            }, Servers{});
            server.shutdown(Deadline::after(std::chrono::seconds(5)));
            (void)srv.join();
        });
        rep.client_cpu = self_cpu() - c0;
    }
    if (opt.json) std::cout << to_json(rep).dump(2) << "\n";
    else print_report(rep);
    return rep.tally.errors == 0 && rep.tally.done == opt.n ? 0 : 1;
}
