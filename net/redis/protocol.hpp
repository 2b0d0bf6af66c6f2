// The Redis wire protocol, by hiredis: Commands encodes commands (RESP
// arrays of bulk strings, as redisFormatCommandArgv writes them) into one
// buffer, so a pipeline of many goes out in one write; ReplyReader parses
// the replies out of whatever bytes arrive, however they are split.
#pragma once

#include "tendril/net/redis/reply.hpp"

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct redisReader;  // hiredis

namespace tendril::redis {

// Commands to send, in order. Arguments are binary-safe; an empty argument
// list is std::invalid_argument.
class Commands {
public:
    Commands() = default;
    Commands(std::initializer_list<std::string_view> args) { add(args); }

    Commands& add(std::initializer_list<std::string_view> args) {
        return add(std::span<const std::string_view>(args.begin(), args.size()));
    }
    Commands& add(std::span<const std::string_view> args);
    Commands& add(const std::vector<std::string>& args);

    std::size_t count() const { return count_; }
    bool empty() const { return count_ == 0; }
    std::string_view bytes() const { return bytes_; }
    void clear() {
        bytes_.clear();
        count_ = 0;
    }

private:
    std::string bytes_;
    std::size_t count_ = 0;
};

class ReplyReader {
public:
    ReplyReader();
    ~ReplyReader();
    ReplyReader(const ReplyReader&) = delete;
    ReplyReader& operator=(const ReplyReader&) = delete;

    // Bytes as they came off the socket.
    void feed(const char* data, std::size_t n);

    enum class Next { reply, need_more, protocol_error };
    // The next complete reply, if the bytes fed so far hold one. After a
    // protocol_error the stream cannot be resynchronised: drop the connection.
    Next next(Reply& out);
    // What the protocol error was.
    const std::string& error() const { return error_; }
    // Start over for a new connection.
    void reset();

private:
    redisReader* reader_ = nullptr;
    std::string error_;
};

}  // namespace tendril::redis
