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
#include "../common/app.hpp"
#include "comet_handler.hpp"

int main(int argc, char** argv) {
    CLI::App app{"comet: long-poll server; GET /wait waits for GET /notify", "comet"};
    tendril::apps::CommonOptions opts;
    tendril::apps::add_common_options(app, opts);
    tendril::apps::parse_or_exit(app, argc, argv);
    // One list for every thread: / counts, and /notify wakes, them all.
    comet::Waiters waiters;
    tendril::apps::run_servers(
        "comet", opts,
        [&](tendril::Listener listener) {
            return std::make_unique<tendril::http::HTTPServer<comet::CometHandler>>(std::move(listener), [&] {
                return std::make_unique<comet::CometHandler>(waiters);
            });
        },
        [&] { waiters.release_all(); });
    return 0;
}
