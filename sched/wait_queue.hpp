// WaitNode and WaitQueue: how a parked fiber is found again.
//
// A fiber that waits registers a WaitNode with the thing it waits on (a
// channel's receiver queue, a descriptor's reader slot, a mutex) and parks.
// Nodes live in the fiber's heap record, never on its stack: the scheduler may
// compact a parked fiber's stack away, and the waker must be able to read the
// node without faulting it back in. A select registers one node per case;
// those share a SelectState and live in one heap block.
#pragma once

#include <cstdint>

namespace tendril {

struct Fiber;
struct SelectState;
class WaitQueue;

struct WaitNode {
    WaitNode* prev = nullptr;
    WaitNode* next = nullptr;
    WaitQueue* queue = nullptr;  // the queue this node is linked in, if any
    Fiber* fiber = nullptr;
    void* slot = nullptr;          // operation-specific (the value to send or receive into)
    SelectState* select = nullptr;  // set when this node is one case of a select
    std::int32_t case_index = -1;
    std::uint32_t flags = 0;  // operation-specific
};

// Intrusive FIFO of WaitNodes: waiters are woken in arrival order.
class WaitQueue {
public:
    WaitQueue() = default;
    WaitQueue(const WaitQueue&) = delete;
    WaitQueue& operator=(const WaitQueue&) = delete;

    bool empty() const { return head_ == nullptr; }
    WaitNode* front() const { return head_; }
    std::uint32_t size() const { return size_; }

    void push_back(WaitNode* n) {
        n->queue = this;
        n->next = nullptr;
        n->prev = tail_;
        if (tail_) tail_->next = n;
        else head_ = n;
        tail_ = n;
        ++size_;
    }
    WaitNode* pop_front() {
        WaitNode* n = head_;
        if (n) remove(n);
        return n;
    }
    void remove(WaitNode* n) {
        if (n->prev) n->prev->next = n->next;
        else head_ = n->next;
        if (n->next) n->next->prev = n->prev;
        else tail_ = n->prev;
        n->prev = n->next = nullptr;
        n->queue = nullptr;
        --size_;
    }

private:
    WaitNode* head_ = nullptr;
    WaitNode* tail_ = nullptr;
    std::uint32_t size_ = 0;
};

}  // namespace tendril
