// TimerHeap (see timer_heap.hpp).
#include "tendril/sched/timer_heap.hpp"

namespace tendril {

void TimerHeap::insert(TimerNode* n, Instant when) {
    if (n->queued()) cancel(n);
    n->when = when;
    n->seq = seq_++;
    heap_.push_back(n);
    n->index = static_cast<std::uint32_t>(heap_.size() - 1);
    sift_up(n->index);
}

void TimerHeap::cancel(TimerNode* n) {
    if (!n->queued()) return;
    std::uint32_t i = n->index;
    std::uint32_t last = static_cast<std::uint32_t>(heap_.size() - 1);
    n->index = TimerNode::kNotQueued;
    if (i == last) {
        heap_.pop_back();
        return;
    }
    place(i, heap_[last]);
    heap_.pop_back();
    if (i > 0 && less(i, (i - 1) / 2)) sift_up(i);
    else sift_down(i);
}

TimerNode* TimerHeap::pop_due(Instant now) {
    if (heap_.empty() || heap_.front()->when > now) return nullptr;
    TimerNode* n = heap_.front();
    cancel(n);
    return n;
}

void TimerHeap::sift_up(std::uint32_t i) {
    TimerNode* n = heap_[i];
    while (i > 0) {
        std::uint32_t parent = (i - 1) / 2;
        const TimerNode* p = heap_[parent];
        if (!(n->when < p->when || (n->when == p->when && n->seq < p->seq))) break;
        place(i, heap_[parent]);
        i = parent;
    }
    place(i, n);
}

void TimerHeap::sift_down(std::uint32_t i) {
    std::uint32_t size = static_cast<std::uint32_t>(heap_.size());
    for (;;) {
        std::uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < size && less(l, m)) m = l;
        if (r < size && less(r, m)) m = r;
        if (m == i) return;
        TimerNode* t = heap_[i];
        place(i, heap_[m]);
        place(m, t);
        i = m;
    }
}

}  // namespace tendril
