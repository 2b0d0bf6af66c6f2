// Status: the one result type of every blocking operation in tendril.
//
// Timeouts, cancellation and a closed descriptor are ordinary outcomes of
// waiting, not crashes, so they are values the caller checks (as Go returns an
// error and userver returns [[nodiscard]] results), never exceptions at the
// lower layers. The buffered streams and the HTTP handler surface turn the
// abnormal ones into IoError exceptions, the way Python's file objects raise.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace tendril {

enum class Status : std::uint8_t {
    ok,
    timeout,    // the Deadline passed first
    cancelled,  // the fiber was cancelled while (or before) it waited
    closed,     // the channel or descriptor was closed
    eof,        // the peer finished sending
    error,      // a system error; see the errno carried beside it
    full,       // try_send on a full channel
    empty,      // try_recv on an empty channel
};

const char* to_string(Status s) noexcept;

// What an I/O call did: n bytes, and why it stopped if it is not ok (eof,
// timeout, cancelled, closed, or error with the errno in `error`).
struct IoResult {
    std::size_t n = 0;
    Status status = Status::ok;
    int error = 0;
    bool ok() const { return status == Status::ok; }
    explicit operator bool() const { return ok(); }
};

// A value or the reason there is none.
template <class T>
struct Result {
    T value{};
    Status status = Status::ok;
    int error = 0;
    bool ok() const { return status == Status::ok; }
    explicit operator bool() const { return ok(); }
    T& operator*() { return value; }
    T* operator->() { return &value; }
};

// "timeout", "closed", or the errno text for Status::error.
std::string describe(Status status, int error);

// Thrown by the convenience layers (Stream, rfile/wfile) where Python would
// raise: a timeout, a cancellation, a closed or reset connection.
class IoError : public std::runtime_error {
public:
    IoError(Status status, int sys_errno, const std::string& what);
    Status status() const noexcept { return status_; }
    int sys_errno() const noexcept { return errno_; }

private:
    Status status_;
    int errno_;
};

}  // namespace tendril
