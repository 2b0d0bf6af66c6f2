// BaseHTTPServer (see server.hpp).
#include "tendril/http/server.hpp"

#include "tendril/sched/detail/scheduler_core.hpp"
#include "tendril/sched/scheduler.hpp"

#include <cstring>

namespace tendril::http {

Listener BaseHTTPServer::bind(const SocketAddress& address, const ListenOptions& options) {
    auto l = Listener::listen(address, options);
    if (!l) throw std::system_error(l.error, std::generic_category(), "cannot listen on " + address.to_string());
    return std::move(l.value);
}

BaseHTTPServer::BaseHTTPServer(Listener listener, ServerConfig config)
    : config_(config),
      tcp_(std::move(listener), [this](Socket& s, const SocketAddress& peer) { serve_connection(s, peer); },
           TcpServerOptions{0, "http-conn"}) {}

BaseHTTPServer::~BaseHTTPServer() = default;

void BaseHTTPServer::serve_forever() { tcp_.serve_forever(); }

void BaseHTTPServer::serve_connection(Socket& sock, const SocketAddress& peer) {
    std::unique_ptr<BaseHTTPRequestHandler> h = make_handler();
    h->attach(&sock, peer, this, &config_, body_policy());
    h->fiber_ = Scheduler::current_fiber();
    h->live_next_ = live_;
    if (live_) live_->live_prev_ = h.get();
    live_ = h.get();
    struct Unlink {
        BaseHTTPServer* s;
        BaseHTTPRequestHandler* h;
        ~Unlink() {
            if (h->live_prev_) h->live_prev_->live_next_ = h->live_next_;
            else s->live_ = h->live_next_;
            if (h->live_next_) h->live_next_->live_prev_ = h->live_prev_;
        }
    } unlink{this, h.get()};
    h->handle();
}

void BaseHTTPServer::shutdown(Deadline grace) {
    if (!tcp_.stopping()) {
        // Keep-alive connections waiting for a next request are closed now;
        // those in the middle of one get the grace period.
        detail::SchedulerCore* s = detail::SchedulerCore::current();
        for (BaseHTTPRequestHandler* h = live_; h; h = h->live_next_)
            if (h->idle() && h->fiber_) s->cancel(h->fiber_);
    }
    tcp_.shutdown(grace);
}

}  // namespace tendril::http
