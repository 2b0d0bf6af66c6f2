// Channel<T>: Go's channels for fibers, within one scheduler or across them.
//
// capacity 0 is a rendezvous (send waits for a receiver); otherwise send waits
// only while the buffer is full. Waiters are served in FIFO order. close()
// lets receivers drain what is buffered and then see Status::closed; sending
// on a closed channel is an error (Status::closed, where Go panics). Every
// blocking operation takes a Deadline and returns timeout or cancelled as
// ordinary results. on_recv()/on_send() are cases for select().
//
// Thread-safe: fibers of any scheduler may send, receive and select on one
// channel, and a plain thread may try_send()/try_recv()/close(). A value
// handed to a receiver parked on another thread travels with its wake and
// is written into the receiver's frame on the receiver's own thread; a
// parked sender's stack is pinned (never compacted), since a receiver on any
// thread moves the value out of its frame.
#pragma once

#include "tendril/core/fatal.hpp"
#include "tendril/core/spin_lock.hpp"
#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/sched/ring_buffer.hpp"
#include "tendril/sched/scheduler.hpp"
#include "tendril/sched/select.hpp"

#include <iterator>
#include <mutex>
#include <optional>
#include <utility>

namespace tendril {

template <class T>
class Channel {
public:
    explicit Channel(std::size_t capacity = 0) : buf_(capacity) {}
    // Parked senders and receivers wake with Status::closed.
    ~Channel() { close(); }
    Channel(const Channel&) = delete;
    Channel& operator=(const Channel&) = delete;

    [[nodiscard]] Status send(T value, Deadline deadline = {}) {
        PendingWakes wakes;
        std::unique_lock<SpinLock> held(lock_);
        Status st = send_locked(value, wakes);
        if (st != Status::full) return st;
        StackPin pin;
        return wait_in(sendq_, held, "channel send", this, deadline, &value);
    }

    [[nodiscard]] Status recv(T& out, Deadline deadline = {}) {
        std::optional<T> v;
        Status st = recv_into(v, deadline);
        if (st == Status::ok) out = std::move(*v);
        return st;
    }
    // The next value, or nullopt once closed and drained (or on cancellation).
    std::optional<T> recv() {
        std::optional<T> v;
        (void)recv_into(v, Deadline::never());
        return v;
    }

    [[nodiscard]] Status try_send(T value) {
        PendingWakes wakes;
        std::lock_guard<SpinLock> held(lock_);
        return send_locked(value, wakes);
    }
    [[nodiscard]] Status try_recv(T& out) {
        std::optional<T> v;
        {
            PendingWakes wakes;
            std::lock_guard<SpinLock> held(lock_);
            if (!take_locked(v, wakes)) return closed_ ? Status::closed : Status::empty;
        }
        out = std::move(*v);
        return Status::ok;
    }

    void close() {
        PendingWakes wakes;
        std::lock_guard<SpinLock> held(lock_);
        if (closed_) return;
        closed_ = true;
        while (WaitNode* w = recvq_.pop_claimed(Status::closed)) wakes.add(w, Status::closed);
        while (WaitNode* w = sendq_.pop_claimed(Status::closed)) wakes.add(w, Status::closed);
    }

    bool is_closed() const { return locked([&] { return closed_; }); }
    std::size_t size() const { return locked([&] { return buf_.size(); }); }
    std::size_t capacity() const { return buf_.capacity(); }
    std::size_t waiting_receivers() const { return locked([&] { return std::size_t{recvq_.size()}; }); }
    std::size_t waiting_senders() const { return locked([&] { return std::size_t{sendq_.size()}; }); }

    // for (T v : channel) -- ends when the channel is closed and drained.
    class iterator {
    public:
        using value_type = T;
        using difference_type = std::ptrdiff_t;
        explicit iterator(Channel* ch) : ch_(ch) { ++*this; }
        T& operator*() { return *cur_; }
        iterator& operator++() {
            cur_ = ch_->recv();
            return *this;
        }
        void operator++(int) { ++*this; }
        bool operator==(std::default_sentinel_t) const { return !cur_.has_value(); }

    private:
        Channel* ch_;
        std::optional<T> cur_;
    };
    iterator begin() { return iterator(this); }
    std::default_sentinel_t end() { return {}; }

    // select() cases.
    class RecvCase final : public SelectCase {
    public:
        RecvCase(Channel& ch, T& out) : ch_(ch), out_(out) {}
        SpinLock* lock() override { return &ch_.lock_; }
        bool try_now_locked(Status& st, PendingWakes& wakes) override {
            if (ch_.take_locked(val_, wakes)) {
                out_ = std::move(*val_);
                st = Status::ok;
                return true;
            }
            st = Status::closed;
            return ch_.closed_;
        }
        void enqueue_locked(WaitNode* n) override {
            n->slot = &val_;
            n->flags = 0;
            ch_.recvq_.push_back(n);
        }
        void dequeue(WaitNode* n) override { ch_.unlink(n); }
        void finish() override {
            if (val_) out_ = std::move(*val_);
        }

    private:
        Channel& ch_;
        T& out_;
        std::optional<T> val_;
    };
    class SendCase final : public SelectCase {
    public:
        SendCase(Channel& ch, T value) : ch_(ch), value_(std::move(value)) {}
        SpinLock* lock() override { return &ch_.lock_; }
        bool try_now_locked(Status& st, PendingWakes& wakes) override {
            st = ch_.send_locked(value_, wakes);
            return st != Status::full;
        }
        void enqueue_locked(WaitNode* n) override {
            n->slot = &value_;
            n->flags = 0;
            ch_.sendq_.push_back(n);
        }
        void dequeue(WaitNode* n) override { ch_.unlink(n); }
        bool needs_pin() const override { return true; }

    private:
        Channel& ch_;
        T value_;
    };
    RecvCase on_recv(T& out) { return RecvCase(*this, out); }
    SendCase on_send(T value) { return SendCase(*this, std::move(value)); }

private:
    template <class F>
    auto locked(F&& f) const {
        std::lock_guard<SpinLock> held(lock_);
        return f();
    }

    void unlink(WaitNode* n) {
        std::lock_guard<SpinLock> held(lock_);
        if (n->queue) n->queue->remove(n);
    }

    // With the lock held; ok, closed or full. A receiver found gets the
    // value with its wake, once the lock is released.
    Status send_locked(T& value, PendingWakes& wakes) {
        if (closed_) return Status::closed;
        if (WaitNode* r = recvq_.pop_claimed()) {
            wakes.add_with(r, Status::ok, [v = std::move(value)](void* slot) mutable {
                static_cast<std::optional<T>*>(slot)->emplace(std::move(v));
            });
            return Status::ok;
        }
        if (buf_.full()) return Status::full;
        buf_.push(std::move(value));
        return Status::ok;
    }

    // With the lock held: take a value without waiting, from the buffer
    // (refilled from a parked sender) or straight from a parked sender. The
    // sender is parked with its stack pinned, so its value can be moved
    // from here, whichever thread this is.
    bool take_locked(std::optional<T>& out, PendingWakes& wakes) {
        if (!buf_.empty()) {
            out.emplace(buf_.pop());
            if (WaitNode* s = sendq_.pop_claimed()) {
                buf_.push(std::move(*static_cast<T*>(s->slot)));
                wakes.add(s, Status::ok);
            }
            return true;
        }
        if (WaitNode* s = sendq_.pop_claimed()) {
            out.emplace(std::move(*static_cast<T*>(s->slot)));
            wakes.add(s, Status::ok);
            return true;
        }
        return false;
    }

    Status recv_into(std::optional<T>& out, Deadline deadline) {
        PendingWakes wakes;
        std::unique_lock<SpinLock> held(lock_);
        if (take_locked(out, wakes)) return Status::ok;
        if (closed_) return Status::closed;
        Status st = wait_in(recvq_, held, "channel recv", this, deadline, &out);
        if (st == Status::ok && !out) return Status::closed;
        return st;
    }

    mutable SpinLock lock_;
    RingBuffer<T> buf_;
    WaitQueue recvq_{&lock_};
    WaitQueue sendq_{&lock_};
    bool closed_ = false;
};

}  // namespace tendril
