// Channel<T>: Go's channels for fibers of one scheduler.
//
// capacity 0 is a rendezvous (send waits for a receiver); otherwise send waits
// only while the buffer is full. Waiters are served in FIFO order. close()
// lets receivers drain what is buffered and then see Status::closed; sending
// on a closed channel is an error (Status::closed, where Go panics). Every
// blocking operation takes a Deadline and returns timeout or cancelled as
// ordinary results. on_recv()/on_send() are cases for select().
//
// A value handed to a parked receiver is written into the receiver's frame,
// so the receiver's stack is made resident first (it may have been compacted
// while it waited).
#pragma once

#include "tendril/core/fatal.hpp"
#include "tendril/core/status.hpp"
#include "tendril/core/time.hpp"
#include "tendril/sched/ring_buffer.hpp"
#include "tendril/sched/scheduler.hpp"
#include "tendril/sched/select.hpp"

#include <iterator>
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
        Status st = try_send_ref(value);
        if (st != Status::full) return st;
        return wait_in(sendq_, "channel send", this, deadline, &value);
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

    [[nodiscard]] Status try_send(T value) { return try_send_ref(value); }
    [[nodiscard]] Status try_recv(T& out) {
        std::optional<T> v;
        if (!take_now(v)) return closed_ ? Status::closed : Status::empty;
        out = std::move(*v);
        return Status::ok;
    }

    void close() {
        if (closed_) return;
        closed_ = true;
        while (WaitNode* w = recvq_.pop_front()) wake_node(w, Status::closed);
        while (WaitNode* w = sendq_.pop_front()) wake_node(w, Status::closed);
    }

    bool is_closed() const { return closed_; }
    std::size_t size() const { return buf_.size(); }
    std::size_t capacity() const { return buf_.capacity(); }
    std::size_t waiting_receivers() const { return recvq_.size(); }
    std::size_t waiting_senders() const { return sendq_.size(); }

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
        bool try_now(Status& st) override {
            if (ch_.take_now(val_)) {
                out_ = std::move(*val_);
                st = Status::ok;
                return true;
            }
            st = Status::closed;
            return ch_.closed_;
        }
        void enqueue(WaitNode* n) override {
            n->slot = &val_;
            n->flags = 0;
            ch_.recvq_.push_back(n);
        }
        void dequeue(WaitNode* n) override {
            if (n->queue) n->queue->remove(n);
        }
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
        bool try_now(Status& st) override {
            st = ch_.try_send_ref(value_);
            return st != Status::full;
        }
        void enqueue(WaitNode* n) override {
            n->slot = &value_;
            n->flags = 0;
            ch_.sendq_.push_back(n);
        }
        void dequeue(WaitNode* n) override {
            if (n->queue) n->queue->remove(n);
        }

    private:
        Channel& ch_;
        T value_;
    };
    RecvCase on_recv(T& out) { return RecvCase(*this, out); }
    SendCase on_send(T value) { return SendCase(*this, std::move(value)); }

private:
    // Give `value` to the parked receiver `r` (a plain recv or a select case).
    void hand_to(WaitNode* r, T&& value) {
        r->fiber->sched->make_resident(r->fiber);
        static_cast<std::optional<T>*>(r->slot)->emplace(std::move(value));
        wake_node(r, Status::ok);
    }

    Status try_send_ref(T& value) {
        if (closed_) return Status::closed;
        if (WaitNode* r = recvq_.pop_front()) {
            hand_to(r, std::move(value));
            return Status::ok;
        }
        if (buf_.full()) return Status::full;
        buf_.push(std::move(value));
        return Status::ok;
    }

    // Take a value without waiting: from the buffer (refilled from a parked
    // sender) or straight from a parked sender.
    bool take_now(std::optional<T>& out) {
        if (!buf_.empty()) {
            out.emplace(buf_.pop());
            if (WaitNode* s = sendq_.pop_front()) {
                s->fiber->sched->make_resident(s->fiber);
                buf_.push(std::move(*static_cast<T*>(s->slot)));
                wake_node(s, Status::ok);
            }
            return true;
        }
        if (WaitNode* s = sendq_.pop_front()) {
            s->fiber->sched->make_resident(s->fiber);
            out.emplace(std::move(*static_cast<T*>(s->slot)));
            wake_node(s, Status::ok);
            return true;
        }
        return false;
    }

    Status recv_into(std::optional<T>& out, Deadline deadline) {
        if (take_now(out)) return Status::ok;
        if (closed_) return Status::closed;
        Status st = wait_in(recvq_, "channel recv", this, deadline, &out);
        if (st == Status::ok && !out) return Status::closed;
        return st;
    }

    RingBuffer<T> buf_;
    WaitQueue recvq_;
    WaitQueue sendq_;
    bool closed_ = false;
};

}  // namespace tendril
