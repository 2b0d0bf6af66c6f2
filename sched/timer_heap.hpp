// TimerHeap: every deadline the scheduler must act on, earliest first.
//
// A binary min-heap of intrusive nodes that remember their index, so both
// insert and cancel are O(log n) and a cancelled timer owns nothing that could
// leak. Ties fire in insertion order. Fiber deadlines embed their node in the
// fiber record; Timer (timer.hpp) allocates one per callback.
#pragma once

#include "tendril/core/time.hpp"

#include <cstdint>
#include <vector>

namespace tendril {

struct TimerNode {
    static constexpr std::uint32_t kNotQueued = UINT32_MAX;
    Instant when{};
    std::uint64_t seq = 0;
    std::uint32_t index = kNotQueued;
    void (*fire)(TimerNode*) = nullptr;
    void* owner = nullptr;
    bool queued() const { return index != kNotQueued; }
};

class TimerHeap {
public:
    void insert(TimerNode* n, Instant when);
    void cancel(TimerNode* n);  // no-op when not queued
    bool empty() const { return heap_.empty(); }
    std::size_t size() const { return heap_.size(); }
    Instant next() const { return heap_.front()->when; }  // requires !empty()
    // Remove and return the earliest node if it is due at `now`, else nullptr.
    TimerNode* pop_due(Instant now);

private:
    bool less(std::uint32_t a, std::uint32_t b) const {
        const TimerNode* x = heap_[a];
        const TimerNode* y = heap_[b];
        return x->when < y->when || (x->when == y->when && x->seq < y->seq);
    }
    void place(std::uint32_t i, TimerNode* n) {
        heap_[i] = n;
        n->index = i;
    }
    void sift_up(std::uint32_t i);
    void sift_down(std::uint32_t i);
    std::vector<TimerNode*> heap_;
    std::uint64_t seq_ = 0;
};

}  // namespace tendril
