// PollDesc: the scheduler's record of one descriptor (Go calls it pollDesc).
//
// Each descriptor is registered with the poller once, edge-triggered for both
// directions, and stays registered until it is closed: waiting costs no
// syscall. An edge sets `readable`/`writable`; the I/O layer clears the flag
// when the syscall answers EAGAIN (or reads short). Because one scheduler
// thread both harvests events and runs fibers, no event can slip in between
// the EAGAIN and the park, so a plain flag suffices where Go needs atomics.
//
// Reader slot (the writer slot is the same with `writable`):
//
//   reader   readable  meaning                       next step
//   -------  --------  ----------------------------  ------------------------------
//   null     true      just opened: unknown          the first read tries at once
//   null     false     drained (EAGAIN, short read)  a reader parks without a syscall
//   null     true      an edge arrived, unconsumed   the next read tries at once
//   node     false     a fiber is parked             an edge wakes it (flag -> true)
//   node     any       hang-up watcher (select case) wakes only once `hup` is set
//
// `hup`/`err` are sticky: the peer hung up or the socket failed. `gen` counts
// openings of this slot; the poller's token carries it, so an event for an fd
// that was closed and reused is recognised as stale and dropped. Closing wakes
// both slots with Status::closed.
#pragma once

#include <cstdint>

namespace tendril {

struct WaitNode;

namespace poll_event {
constexpr std::uint32_t in = 1;   // readable (or EOF / error to be read)
constexpr std::uint32_t out = 2;  // writable
constexpr std::uint32_t hup = 4;  // the peer closed its side or the connection is gone
constexpr std::uint32_t err = 8;  // an error is pending on the socket
}  // namespace poll_event

// WaitNode flags for a reader slot.
constexpr std::uint32_t kWaitHangupOnly = 1;

struct PollDesc {
    int fd = -1;
    std::uint32_t gen = 0;
    bool open = false;
    bool polled = false;  // registered with the poller (regular files are not)
    bool readable = false;
    bool writable = false;
    bool hup = false;
    bool err = false;
    WaitNode* reader = nullptr;
    WaitNode* writer = nullptr;

    std::uint64_t token() const {
        return static_cast<std::uint32_t>(fd) | (static_cast<std::uint64_t>(gen) << 32);
    }
};

}  // namespace tendril
