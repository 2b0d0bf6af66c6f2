// Poller backend for the BSDs and macOS: kqueue with EV_CLEAR (edge-triggered)
// on EVFILT_READ and EVFILT_WRITE, and EVFILT_USER for wake().
//
// Registrations are not sent one syscall each: they are queued in a
// changelist and submitted with the next kevent() wait, as libevent and Go do.
// A descriptor closed before its registration was submitted is removed from
// the changelist (closing ends a kqueue registration by itself otherwise).
// Builds on Linux against libkqueue (make POLLER=kqueue) for testing; there a
// close() goes unseen, so registrations are deleted before it (see remove()).
#include "tendril/sched/detail/poller.hpp"

#include "tendril/core/fatal.hpp"

#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace tendril {

namespace {
constexpr int kBatch = 512;
constexpr uintptr_t kWakeIdent = 0;
// libkqueue keeps its knotes after the descriptor is closed, and an EV_ADD for
// the reused number then updates the stale knote without registering the new
// file with epoll: it never reports an event (libkqueue's BUGS.md asks for an
// EV_DELETE before close). A kernel kqueue forgets closed descriptors itself.
#ifdef LIBKQUEUE
constexpr bool kCloseForgets = false;
#else
constexpr bool kCloseForgets = true;
#endif
void* to_udata(std::uint64_t token) { return reinterpret_cast<void*>(static_cast<uintptr_t>(token)); }
std::uint64_t from_udata(void* p) { return static_cast<std::uint64_t>(reinterpret_cast<uintptr_t>(p)); }
}  // namespace

struct Poller::Impl {
    int kq = -1;
    std::vector<struct kevent> changes;
    struct kevent events[kBatch];
    void flush() {
        if (changes.empty()) return;
        // With no event list, failures of individual changes are reported by
        // the call itself; a descriptor that vanished meanwhile is fine.
        if (::kevent(kq, changes.data(), static_cast<int>(changes.size()), nullptr, 0, nullptr) < 0 &&
            errno != EBADF && errno != ENOENT)
            fatal("kevent(changes): %s", std::strerror(errno));
        changes.clear();
    }
};

Poller::Poller() : impl_(new Impl) {
    static_assert(sizeof(void*) == 8, "tokens are carried in udata");
    impl_->kq = ::kqueue();
    if (impl_->kq < 0) fatal("kqueue: %s", std::strerror(errno));
    struct kevent ev;
    EV_SET(&ev, kWakeIdent, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, nullptr);
    if (::kevent(impl_->kq, &ev, 1, nullptr, 0, nullptr) < 0)
        fatal("kevent(EVFILT_USER): %s", std::strerror(errno));
    impl_->changes.reserve(kBatch);
}

Poller::~Poller() {
    ::close(impl_->kq);
    delete impl_;
}

bool Poller::add(const PollDesc& pd) {
    if (impl_->changes.size() + 2 > kBatch) impl_->flush();
    struct kevent ev[2];
    EV_SET(&ev[0], pd.fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, to_udata(pd.token()));
    EV_SET(&ev[1], pd.fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, to_udata(pd.token()));
    impl_->changes.push_back(ev[0]);
    impl_->changes.push_back(ev[1]);
    return true;
}

void Poller::remove(const PollDesc& pd, bool closing) {
    auto& ch = impl_->changes;
    bool submitted = true;
    for (std::size_t i = 0; i < ch.size();) {
        if (static_cast<int>(ch[i].ident) == pd.fd) {
            ch.erase(ch.begin() + static_cast<long>(i));
            submitted = false;
        } else {
            ++i;
        }
    }
    if (!submitted || (closing && kCloseForgets)) return;
    struct kevent ev[2];
    EV_SET(&ev[0], pd.fd, EVFILT_READ, EV_DELETE, 0, 0, nullptr);
    EV_SET(&ev[1], pd.fd, EVFILT_WRITE, EV_DELETE, 0, 0, nullptr);
    ::kevent(impl_->kq, ev, 2, nullptr, 0, nullptr);
}

int Poller::poll(Duration timeout, PollEvent* out, int max) {
    timespec ts{};
    timespec* tsp = nullptr;
    if (timeout != Duration::max()) {
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
        ts.tv_sec = static_cast<time_t>(ns / 1000000000);
        ts.tv_nsec = static_cast<long>(ns % 1000000000);
        tsp = &ts;
    }
    int cap = max < kBatch ? max : kBatch;
    int n = ::kevent(impl_->kq, impl_->changes.data(), static_cast<int>(impl_->changes.size()),
                     impl_->events, cap, tsp);
    if (n < 0 && errno != EINTR) {
        // A change in the batch failed before the wait: submit them alone
        // (tolerating vanished descriptors), then wait again.
        impl_->flush();
        n = ::kevent(impl_->kq, nullptr, 0, impl_->events, cap, tsp);
    }
    impl_->changes.clear();
    if (n < 0) {
        if (errno == EINTR) return 0;
        fatal("kevent: %s", std::strerror(errno));
    }
    int k = 0;
    for (int i = 0; i < n; ++i) {
        const struct kevent& e = impl_->events[i];
        if (e.filter == EVFILT_USER) continue;
        if (e.flags & EV_ERROR) continue;  // a change for a descriptor closed meanwhile
        std::uint32_t ev = 0;
        if (e.filter == EVFILT_READ) ev |= poll_event::in;
        if (e.filter == EVFILT_WRITE) ev |= poll_event::out;
        if (e.flags & EV_EOF) {
            ev |= poll_event::hup;
            if (e.fflags != 0) ev |= poll_event::err | poll_event::in | poll_event::out;
        }
        out[k++] = PollEvent{from_udata(e.udata), ev};
    }
    return k;
}

void Poller::wake() noexcept {
    struct kevent ev;
    EV_SET(&ev, kWakeIdent, EVFILT_USER, 0, NOTE_TRIGGER, 0, nullptr);
    ::kevent(impl_->kq, &ev, 1, nullptr, 0, nullptr);
}

const char* Poller::backend() noexcept { return "kqueue"; }

}  // namespace tendril
