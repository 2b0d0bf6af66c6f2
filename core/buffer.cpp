// ByteBuffer and its block pool (see buffer.hpp).
#include "tendril/core/buffer.hpp"

#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

namespace tendril {

namespace {
struct FreeBlocks {
    std::vector<char*> blocks;
    ~FreeBlocks() {
        for (char* b : blocks) std::free(b);
    }
};
thread_local FreeBlocks t_free;
}  // namespace

char* BlockPool::get() {
    if (!t_free.blocks.empty()) {
        char* b = t_free.blocks.back();
        t_free.blocks.pop_back();
        return b;
    }
    char* b = static_cast<char*>(std::malloc(kBlock));
    if (!b) throw std::bad_alloc();
    return b;
}

void BlockPool::put(char* block) {
    if (t_free.blocks.size() < kKeep) t_free.blocks.push_back(block);
    else std::free(block);
}

std::size_t BlockPool::free_blocks() { return t_free.blocks.size(); }

ByteBuffer::ByteBuffer(ByteBuffer&& o) noexcept
    : buf_(std::exchange(o.buf_, nullptr)),
      cap_(std::exchange(o.cap_, 0)),
      begin_(std::exchange(o.begin_, 0)),
      end_(std::exchange(o.end_, 0)) {}

ByteBuffer& ByteBuffer::operator=(ByteBuffer&& o) noexcept {
    if (this != &o) {
        release();
        buf_ = std::exchange(o.buf_, nullptr);
        cap_ = std::exchange(o.cap_, 0);
        begin_ = std::exchange(o.begin_, 0);
        end_ = std::exchange(o.end_, 0);
    }
    return *this;
}

void ByteBuffer::consume(std::size_t n) {
    begin_ += n;
    if (begin_ >= end_) begin_ = end_ = 0;
}

char* ByteBuffer::prepare(std::size_t min) {
    if (cap_ - end_ >= min) return buf_ + end_;
    std::size_t used = size();
    if (buf_ && cap_ - used >= min) {  // room after moving the bytes to the front
        std::memmove(buf_, buf_ + begin_, used);
        begin_ = 0;
        end_ = used;
        return buf_ + end_;
    }
    std::size_t want = used + min;
    std::size_t cap = cap_ ? cap_ : BlockPool::kBlock;
    while (cap < want) cap *= 2;
    char* nb = cap == BlockPool::kBlock ? BlockPool::get() : static_cast<char*>(std::malloc(cap));
    if (!nb) throw std::bad_alloc();
    if (used) std::memcpy(nb, buf_ + begin_, used);
    char* old = buf_;
    std::size_t old_cap = cap_;
    buf_ = nb;
    cap_ = cap;
    begin_ = 0;
    end_ = used;
    if (old) {
        if (old_cap == BlockPool::kBlock) BlockPool::put(old);
        else std::free(old);
    }
    return buf_ + end_;
}

void ByteBuffer::append_slow(const void* p, std::size_t n) {
    if (!n) return;
    std::memcpy(prepare(n), p, n);
    end_ += n;
}

void ByteBuffer::release() {
    if (buf_) {
        if (cap_ == BlockPool::kBlock) BlockPool::put(buf_);
        else std::free(buf_);
    }
    buf_ = nullptr;
    cap_ = begin_ = end_ = 0;
}

}  // namespace tendril
