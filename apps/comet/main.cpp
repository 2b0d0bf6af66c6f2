// comet: the seed's long-poll server, ported (../shared/spec/apps.md).
//
//   GET /wait    200 text/plain, headers at once; the body, after the next
//                /notify, is the number n it delivered (close-delimited for
//                HTTP/1.0, chunked for HTTP/1.1).
//   GET /notify  every waiter registered now receives n = their count; the
//                body is n.
//   GET /        the number of waiters (any other path too).
//   GET /app     a page for a person: live count, notifications, a button.
//
// A waiter parks on its own Channel and, in the same select, on its client's
// hang-up: a client that goes away is dropped at once and never "notified".
//
// --redis HOST:PORT [--node NAME]: one comet of several, which count and
// notify their waiters together (cluster.hpp says how, and what it promises).
#include "../common/app.hpp"
#include "cluster.hpp"
#include "comet_handler.hpp"

#include <unistd.h>

int main(int argc, char** argv) {
    CLI::App app{"comet: long-poll server; GET /wait waits for GET /notify", "comet"};
    tendril::apps::CommonOptions opts;
    tendril::apps::add_common_options(app, opts);
    std::string redis_address;
    comet::ClusterOptions cluster;
    double redis_timeout = 0.5;
    CLI::Option* redis_flag = app.add_option("--redis", redis_address,
                   "HOST:PORT of a Redis server: count and notify the waiters of every comet using it");
    app.add_option("--node", cluster.node, "with --redis: this node's name, unique among them (default: HOSTNAME-PID)");
    app.add_option("--redis-timeout", redis_timeout, "with --redis: seconds a request waits for Redis")
        ->check(CLI::Range(0.001, 60.0))
        ->capture_default_str();
    tendril::apps::parse_or_exit(app, argc, argv);
    auto usage_error = [](const std::string& what) {
        std::cerr << "comet: " << what << "\nRun with --help for usage.\n";
        std::exit(2);
    };
    if (redis_flag->count() > 0) {
        std::string why;
        if (!tendril::redis::parse_address(redis_address, cluster.redis, &why)) usage_error("--redis: " + why);
        if (cluster.node.empty()) {
            char host[256] = "comet";
            (void)::gethostname(host, sizeof host - 1);
            cluster.node = std::string(host) + "-" + std::to_string(::getpid());
        }
        if (cluster.node.size() > 200 || cluster.node.find_first_of(" \t\r\n") != std::string::npos)
            usage_error("--node: a name of at most 200 bytes without spaces");
        cluster.timeout = std::chrono::duration_cast<tendril::Duration>(std::chrono::duration<double>(redis_timeout));
    } else if (!cluster.node.empty()) {
        usage_error("--node needs --redis");
    }

    // One list for every thread: / counts, and /notify wakes, them all.
    comet::Waiters waiters;
    comet::ClusterHealth health;
    std::unique_ptr<comet::ClusterAgent> agent;
    tendril::apps::run_servers(
        "comet", opts,
        [&](tendril::Listener listener) {
            std::shared_ptr<comet::ClusterLink> link;  // this thread's, owned by its server's factory
            if (redis_flag->count() > 0) link = std::make_shared<comet::RedisClusterLink>(waiters, cluster, health);
            return std::make_unique<tendril::http::HTTPServer<comet::CometHandler>>(std::move(listener), [&, link] {
                return std::make_unique<comet::CometHandler>(waiters, link.get());
            });
        },
        {.start =
             [&] {
                 if (redis_flag->count() == 0) return;
                 agent = std::make_unique<comet::ClusterAgent>(waiters, cluster, health);
                 agent->start(std::chrono::seconds(1));
             },
         .before_stop =
             [&] {
                 waiters.release_all();
                 if (agent) agent->stop();
                 agent.reset();  // on its own thread, while its scheduler runs
             }});
    return 0;
}
