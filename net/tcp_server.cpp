// TcpServer (see tcp_server.hpp).
#include "tendril/net/tcp_server.hpp"

#include "tendril/core/log.hpp"
#include "tendril/sched/scheduler.hpp"

namespace tendril {

TcpServer::TcpServer(Listener listener, ConnectionHandler handler, TcpServerOptions options)
    : listener_(std::move(listener)), handler_(std::move(handler)), options_(std::move(options)) {
    address_ = listener_.local_address();
    if (options_.connection_limit) limit_ = options_.connection_limit;
    else if (options_.max_connections) limit_ = std::make_shared<ConnectionLimit>(options_.max_connections);
}

TcpServer::TcpServer(Listener listener, Handler handler, TcpServerOptions options)
    : TcpServer(std::move(listener),
                ConnectionHandler([h = std::move(handler)](Socket& s, const SocketAddress& peer, Connection&) {
                    h(s, peer);
                }),
                options) {}

TcpServer::~TcpServer() = default;

void TcpServer::run_connection(Connection* c, Socket sock, SocketAddress peer) {
    if (!on_connect || on_connect(sock, peer)) handler_(sock, peer, *c);
    sock.close();
    if (limit_) limit_->release();
    conns_.remove(c);
    delete c;
    if (conns_.empty() && stopping_) drained_.set();
}

// The next connection, holding a slot of the limit. The slot is taken once a
// client is waiting and before it is accepted: at the limit the client stays
// in the backlog and nothing calls accept() until a slot frees up.
Result<Socket> TcpServer::accept_within_limit(SocketAddress* peer) {
    // Already passed: accept only a connection that is pending now.
    static constexpr Deadline kPendingOnly = Deadline::at(Instant{});
    for (;;) {
        Result<Socket> r;
        Status st = listener_.fd().wait_readable();
        if (st == Status::ok && !limit_->try_acquire()) {
            // Full. Pause only for a client that is really there: the ready
            // flag may be left over from the accept that filled the limit.
            if (!listener_.pending()) continue;
            if (!limit_->acquire(room_, stopping_)) st = Status::closed;
        }
        if (st != Status::ok) {
            r.status = st;
            return r;
        }
        r = listener_.accept(kPendingOnly, peer);
        if (r) return r;
        limit_->release();
        // None pending after all (a stale edge, or another thread took it):
        // wait for the next one without a slot.
        if (r.status != Status::timeout) return r;
    }
}

void TcpServer::serve_forever() {
    drained_.clear();
    stopped_.clear();
    serving_ = true;
    FiberOptions fo;
    fo.name = options_.name;
    fo.stack_size = options_.stack_size;
    while (!stopping_) {
        SocketAddress peer;
        auto r = limit_ ? accept_within_limit(&peer) : listener_.accept(Deadline::never(), &peer);
        if (!r) {
            if (r.status == Status::closed || r.status == Status::cancelled) break;
            TENDRIL_LOG(LogLevel::error, "accept: %s", describe(r.status, r.error).c_str());
            (void)sleep_for(std::chrono::milliseconds(10));
            continue;
        }
        ++accepted_;
        auto* c = new Connection;
        conns_.push_front(c);
        c->fiber = go([this, c, sock = std::move(r.value), peer]() mutable {
            run_connection(c, std::move(sock), peer);
        }, fo);
    }
    listener_.close();
    if (!conns_.empty()) (void)drained_.wait();
    serving_ = false;
    stopped_.set();
}

void TcpServer::shutdown(Deadline grace) {
    if (!stopping_) {
        stopping_ = true;
        listener_.close();  // wakes the accept loop with Status::closed
        room_.set();        // or from its pause at the connection limit
        if (conns_.empty()) drained_.set();
    }
    CancelShield shield;  // the caller may itself be cancelled: finish the job
    if (drained_.wait(grace) != Status::ok) {
        TENDRIL_LOG(LogLevel::info, "shutdown: cancelling %zu connection(s) still open", conns_.size());
        for_each_connection([](Connection& c) { c.fiber.cancel(); });
        (void)drained_.wait();
    }
    if (serving_) (void)stopped_.wait();
}

}  // namespace tendril
