// RingBuffer<T>: the fixed-capacity FIFO behind a buffered Channel.
// Allocated once at the channel's capacity (std::deque would allocate a
// 512-byte block even for a one-slot channel, and a comet server holds one
// channel per parked client).
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace tendril {

template <class T>
class RingBuffer {
public:
    explicit RingBuffer(std::size_t capacity)
        : cap_(capacity),
          data_(capacity ? static_cast<T*>(::operator new(sizeof(T) * capacity, std::align_val_t(alignof(T))))
                         : nullptr) {}
    ~RingBuffer() {
        while (size_) pop();
        if (data_) ::operator delete(data_, std::align_val_t(alignof(T)));
    }
    RingBuffer(const RingBuffer&) = delete;
    RingBuffer& operator=(const RingBuffer&) = delete;

    std::size_t size() const { return size_; }
    std::size_t capacity() const { return cap_; }
    bool empty() const { return size_ == 0; }
    bool full() const { return size_ == cap_; }

    void push(T&& v) {
        std::size_t i = head_ + size_;
        if (i >= cap_) i -= cap_;
        ::new (&data_[i]) T(std::move(v));
        ++size_;
    }
    T pop() {
        T v(std::move(data_[head_]));
        data_[head_].~T();
        if (++head_ == cap_) head_ = 0;
        --size_;
        return v;
    }

private:
    std::size_t cap_;
    T* data_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
};

}  // namespace tendril
