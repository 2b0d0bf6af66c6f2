// IntrusiveList: a doubly linked list whose links live in the elements.
//
// The scheduler, the stack pool, the servers and the apps keep many lists
// of things that are created and destroyed at high rates (fibers, stacks,
// connections, waiters) and must be unlinked in O(1) from the middle, often
// from a signal-free but allocation-averse path. Links inside the element
// cost no allocation and no lookup. An element may sit in several lists at
// once through several hooks:
//
//   struct Conn {
//       ListHook<Conn> hook;
//   };
//   IntrusiveList<Conn, &Conn::hook> conns;
//
// The list does not own its elements; an element must be removed before it
// is destroyed. Not thread-safe.
#pragma once

#include <cstddef>
#include <utility>

namespace tendril {

template <class T>
struct ListHook {
    T* prev = nullptr;
    T* next = nullptr;
    bool linked = false;
};

template <class T, ListHook<T> T::*Hook>
class IntrusiveList {
public:
    IntrusiveList() = default;
    IntrusiveList(const IntrusiveList&) = delete;
    IntrusiveList& operator=(const IntrusiveList&) = delete;

    bool empty() const { return head_ == nullptr; }
    std::size_t size() const { return size_; }
    T* front() const { return head_; }
    T* back() const { return tail_; }
    static bool contains(const T* e) { return (e->*Hook).linked; }
    static T* next(const T* e) { return (e->*Hook).next; }
    static T* prev(const T* e) { return (e->*Hook).prev; }

    void push_back(T* e) {
        ListHook<T>& h = e->*Hook;
        h.prev = tail_;
        h.next = nullptr;
        h.linked = true;
        if (tail_) (tail_->*Hook).next = e;
        else head_ = e;
        tail_ = e;
        ++size_;
    }
    void push_front(T* e) {
        ListHook<T>& h = e->*Hook;
        h.prev = nullptr;
        h.next = head_;
        h.linked = true;
        if (head_) (head_->*Hook).prev = e;
        else tail_ = e;
        head_ = e;
        ++size_;
    }
    // e must be in this list.
    void remove(T* e) {
        ListHook<T>& h = e->*Hook;
        if (h.prev) (h.prev->*Hook).next = h.next;
        else head_ = h.next;
        if (h.next) (h.next->*Hook).prev = h.prev;
        else tail_ = h.prev;
        h.prev = h.next = nullptr;
        h.linked = false;
        --size_;
    }
    T* pop_front() {
        T* e = head_;
        if (e) remove(e);
        return e;
    }
    T* pop_back() {
        T* e = tail_;
        if (e) remove(e);
        return e;
    }
    // Exchange contents (taking a batch to work through while new elements
    // arrive in the other list).
    void swap(IntrusiveList& o) {
        std::swap(head_, o.head_);
        std::swap(tail_, o.tail_);
        std::swap(size_, o.size_);
    }

    // for (T* e : list) -- the current element may be removed meanwhile.
    class iterator {
    public:
        explicit iterator(T* e) : e_(e), next_(e ? (e->*Hook).next : nullptr) {}
        T* operator*() const { return e_; }
        iterator& operator++() {
            e_ = next_;
            next_ = e_ ? (e_->*Hook).next : nullptr;
            return *this;
        }
        bool operator!=(const iterator& o) const { return e_ != o.e_; }

    private:
        T* e_;
        T* next_;
    };
    iterator begin() const { return iterator(head_); }
    iterator end() const { return iterator(nullptr); }

private:
    T* head_ = nullptr;
    T* tail_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace tendril
