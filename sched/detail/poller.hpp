// Poller: the contract between the scheduler and the kernel's readiness API.
//
// Four operations, as in Redis's ae backends and Go's netpoll_*.go: register
// a descriptor (once, edge-triggered, both directions), forget it, wait for
// events with a timeout, and wake the waiting thread from anywhere (another
// thread or a signal handler). Each backend is one file -- poller_epoll.cpp,
// poller_kqueue.cpp -- and the Makefile links exactly one, so the scheduler
// has no #ifdefs. Events come back as (token, poll_event bits); the scheduler
// maps tokens to PollDescs and fibers.
#pragma once

#include "tendril/core/time.hpp"
#include "tendril/sched/detail/poll_desc.hpp"

#include <cstdint>

namespace tendril {

struct PollEvent {
    std::uint64_t token;
    std::uint32_t events;  // poll_event bits
};

class Poller {
public:
    Poller();
    ~Poller();
    Poller(const Poller&) = delete;
    Poller& operator=(const Poller&) = delete;

    // Register pd.fd for read and write readiness, edge-triggered, reporting
    // pd.token(). Returns false if the descriptor cannot be polled (a regular
    // file): such descriptors are always ready.
    bool add(const PollDesc& pd);
    // Forget pd.fd. With closing = true the descriptor is about to be closed,
    // which ends its registration anyway; backends then skip the syscall.
    void remove(const PollDesc& pd, bool closing);
    // Wait up to `timeout` (zero: do not block; Duration::max(): forever) and
    // store up to `max` events. Returns how many; a wake() returns early.
    int poll(Duration timeout, PollEvent* out, int max);
    // Make a current or the next poll() return. Thread- and signal-safe.
    void wake() noexcept;

    static const char* backend() noexcept;

private:
    struct Impl;
    Impl* impl_;
};

}  // namespace tendril
