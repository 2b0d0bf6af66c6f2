// ByteBuffer: a byte queue for socket I/O whose storage can be given back.
//
// A connection parked between requests (or a comet waiter) should cost no
// buffer at all, so buffers are taken from a per-thread pool of fixed-size
// blocks when bytes arrive and returned with release() when they are empty.
// Larger needs (a 64 KiB header block) grow into heap storage up to the
// caller's limit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace tendril {

// A per-thread free list of kBlock-byte blocks (kept up to kKeep of them).
class BlockPool {
public:
    static constexpr std::size_t kBlock = 16 * 1024;
    static constexpr std::size_t kKeep = 256;
    static char* get();
    static void put(char* block);
    static std::size_t free_blocks();
};

class ByteBuffer {
public:
    ByteBuffer() = default;
    ~ByteBuffer() { release(); }
    ByteBuffer(ByteBuffer&& o) noexcept;
    ByteBuffer& operator=(ByteBuffer&& o) noexcept;
    ByteBuffer(const ByteBuffer&) = delete;
    ByteBuffer& operator=(const ByteBuffer&) = delete;

    // Readable bytes.
    std::size_t size() const { return end_ - begin_; }
    bool empty() const { return end_ == begin_; }
    const char* data() const { return buf_ + begin_; }
    char* data() { return buf_ + begin_; }
    std::string_view view() const { return {buf_ + begin_, size()}; }
    void consume(std::size_t n);

    // Room to write at least `min` bytes at the end (compacting or growing).
    char* prepare(std::size_t min);
    std::size_t writable() const { return cap_ - end_; }
    char* write_ptr() { return buf_ + end_; }
    void commit(std::size_t n) { end_ += n; }
    void append(const void* p, std::size_t n) {
        if (n <= cap_ - end_) {  // the common case, kept inline
            std::memcpy(buf_ + end_, p, n);
            end_ += n;
            return;
        }
        append_slow(p, n);
    }
    void append(std::string_view s) { append(s.data(), s.size()); }

    std::size_t capacity() const { return cap_; }
    bool has_storage() const { return buf_ != nullptr; }
    // Drop the contents and give the storage back.
    void release();
    // Give the storage back if nothing is buffered.
    void release_if_empty() {
        if (empty()) release();
    }
    void clear() { begin_ = end_ = 0; }
    // Keep only the first n readable bytes.
    void truncate(std::size_t n) {
        if (n < size()) end_ = begin_ + n;
    }

private:
    void append_slow(const void* p, std::size_t n);
    char* buf_ = nullptr;
    std::size_t cap_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
};

}  // namespace tendril
