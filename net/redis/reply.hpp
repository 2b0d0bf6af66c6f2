// Reply: one Redis reply, owned (RESP2: status, error, integer, bulk
// string, nil, array).
//
// An error reply ("-ERR unknown command") is a Reply like any other: the
// command reached Redis and Redis answered. A transport failure (Redis down,
// a timeout, a broken connection) is never a Reply; it is the Status of the
// Result that would have carried one.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tendril::redis {

enum class ReplyType : std::uint8_t { nil, status, error, integer, string, array };

const char* to_string(ReplyType t) noexcept;

struct Reply {
    ReplyType type = ReplyType::nil;
    std::string str;       // status, error and string replies
    long long integer = 0;  // integer replies
    std::vector<Reply> elements;  // array replies

    bool is_nil() const { return type == ReplyType::nil; }
    bool is_error() const { return type == ReplyType::error; }
    bool is_string() const { return type == ReplyType::string; }
    bool is_integer() const { return type == ReplyType::integer; }
    bool is_array() const { return type == ReplyType::array; }
    // "+OK" and the like.
    bool is_status(std::string_view s) const { return type == ReplyType::status && str == s; }

    // As redis-cli prints it, on one line: "OK", "(error) ERR ...",
    // "(integer) 3", "\"abc\"", "(nil)", "[\"a\", (integer) 1]".
    std::string to_string() const;
};

}  // namespace tendril::redis
