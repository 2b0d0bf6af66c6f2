// Poller backend for Linux: epoll, edge-triggered, and an eventfd for wake().
//
// Every descriptor gets one EPOLL_CTL_ADD with EPOLLIN|EPOLLOUT|EPOLLRDHUP|
// EPOLLET and no further epoll_ctl calls: readiness is tracked in PollDesc
// flags, and closing a descriptor removes it from the interest list by itself
// (so no EPOLL_CTL_DEL on the close path, which saves a syscall per
// connection). Stale events are dropped by the generation in the token.
#include "tendril/sched/detail/poller.hpp"

#include "tendril/core/fatal.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tendril {

namespace {
constexpr std::uint64_t kWakeToken = UINT64_MAX;
constexpr int kBatch = 512;
}  // namespace

struct Poller::Impl {
    int epfd = -1;
    int wakefd = -1;
    bool have_pwait2 = true;
    epoll_event events[kBatch];
};

Poller::Poller() : impl_(new Impl) {
    impl_->epfd = ::epoll_create1(EPOLL_CLOEXEC);
    if (impl_->epfd < 0) fatal("epoll_create1: %s", std::strerror(errno));
    impl_->wakefd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (impl_->wakefd < 0) fatal("eventfd: %s", std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.u64 = kWakeToken;
    if (::epoll_ctl(impl_->epfd, EPOLL_CTL_ADD, impl_->wakefd, &ev) != 0)
        fatal("epoll_ctl(eventfd): %s", std::strerror(errno));
}

Poller::~Poller() {
    ::close(impl_->wakefd);
    ::close(impl_->epfd);
    delete impl_;
}

bool Poller::add(const PollDesc& pd) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = pd.token();
    if (::epoll_ctl(impl_->epfd, EPOLL_CTL_ADD, pd.fd, &ev) == 0) return true;
    if (errno == EEXIST)  // still registered through a dup of an old descriptor
        return ::epoll_ctl(impl_->epfd, EPOLL_CTL_MOD, pd.fd, &ev) == 0;
    if (errno == EPERM) return false;  // regular file: always ready
    fatal("epoll_ctl(ADD, fd %d): %s", pd.fd, std::strerror(errno));
}

void Poller::remove(const PollDesc& pd, bool closing) {
    if (closing) return;
    ::epoll_ctl(impl_->epfd, EPOLL_CTL_DEL, pd.fd, nullptr);
}

int Poller::poll(Duration timeout, PollEvent* out, int max) {
    int n;
    int cap = max < kBatch ? max : kBatch;
    if (timeout == Duration::zero()) {
        n = ::epoll_wait(impl_->epfd, impl_->events, cap, 0);
    } else if (timeout == Duration::max()) {
        n = ::epoll_wait(impl_->epfd, impl_->events, cap, -1);
    } else {
        // epoll_pwait2 takes nanoseconds; epoll_wait only milliseconds (rounded
        // up so that a timer is never woken for early and spun on).
        n = -1;
        if (impl_->have_pwait2) {
            auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
            timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
            n = ::epoll_pwait2(impl_->epfd, impl_->events, cap, &ts, nullptr);
            if (n < 0 && errno == ENOSYS) impl_->have_pwait2 = false;
        }
        if (!impl_->have_pwait2) {
            auto ms = std::chrono::ceil<std::chrono::milliseconds>(timeout).count();
            n = ::epoll_wait(impl_->epfd, impl_->events, cap,
                             ms > INT32_MAX ? INT32_MAX : static_cast<int>(ms));
        }
    }
    if (n < 0) {
        if (errno == EINTR) return 0;
        fatal("epoll_wait: %s", std::strerror(errno));
    }
    int k = 0;
    for (int i = 0; i < n; ++i) {
        const epoll_event& e = impl_->events[i];
        if (e.data.u64 == kWakeToken) {
            std::uint64_t v;
            while (::read(impl_->wakefd, &v, sizeof v) > 0) {
            }
            continue;
        }
        std::uint32_t ev = 0;
        if (e.events & EPOLLIN) ev |= poll_event::in;
        if (e.events & EPOLLOUT) ev |= poll_event::out;
        if (e.events & EPOLLRDHUP) ev |= poll_event::in | poll_event::hup;
        if (e.events & EPOLLHUP) ev |= poll_event::in | poll_event::out | poll_event::hup;
        if (e.events & EPOLLERR) ev |= poll_event::in | poll_event::out | poll_event::err;
        out[k++] = PollEvent{e.data.u64, ev};
    }
    return k;
}

void Poller::wake() noexcept {
    std::uint64_t one = 1;
    ssize_t r = ::write(impl_->wakefd, &one, sizeof one);
    (void)r;  // EAGAIN means a wake is already pending: fine
}

const char* Poller::backend() noexcept { return "epoll"; }

}  // namespace tendril
