// resolve() (see resolver.hpp).
#include "tendril/net/resolver.hpp"

#include "tendril/sched/event.hpp"
#include "tendril/sched/work_pool.hpp"

#include <netdb.h>

#include <memory>
#include <string>

namespace tendril {

namespace {
// Owned by the lookup and the waiting fiber together: a fiber that gives up
// (deadline, cancellation) leaves, and the thread still has valid memory.
struct Lookup {
    std::string host;
    std::uint16_t port;
    int rc = 0;
    int sys_errno = 0;
    std::vector<SocketAddress> out;
    Event done;
};
}  // namespace

Result<std::vector<SocketAddress>> resolve(std::string_view host, std::uint16_t port, Deadline deadline) {
    Result<std::vector<SocketAddress>> r;
    if (auto a = SocketAddress::ip(host, port)) {
        r.value.push_back(*a);
        return r;
    }
    Scheduler* s = Scheduler::current();
    auto job = std::make_shared<Lookup>();
    job->host = std::string(host);
    job->port = port;
    Scheduler::Hold hold(*s);
    WorkPool::shared().submit([job, s] {
        addrinfo hints{};
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_ADDRCONFIG;
        addrinfo* res = nullptr;
        job->rc = ::getaddrinfo(job->host.c_str(), std::to_string(job->port).c_str(), &hints, &res);
        job->sys_errno = errno;
        for (addrinfo* p = res; p; p = p->ai_next) job->out.emplace_back(p->ai_addr, p->ai_addrlen);
        if (res) ::freeaddrinfo(res);
        s->post([job] { job->done.set(); });
    });
    Status st = job->done.wait(deadline);
    if (st != Status::ok) {
        r.status = st;
        return r;
    }
    if (job->rc != 0 || job->out.empty()) {
        r.status = Status::error;
        r.error = job->rc == EAI_SYSTEM ? job->sys_errno : EHOSTUNREACH;
        return r;
    }
    r.value = std::move(job->out);
    return r;
}

}  // namespace tendril
