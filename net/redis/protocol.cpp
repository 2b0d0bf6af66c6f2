#include "tendril/net/redis/protocol.hpp"

#include "tendril/core/fatal.hpp"

#include <hiredis/hiredis.h>

#include <cstdlib>
#include <stdexcept>

namespace tendril::redis {

Commands& Commands::add(std::span<const std::string_view> args) {
    // "*0" would get no reply, and every later reply would answer the wrong command.
    if (args.empty()) throw std::invalid_argument("redis::Commands: a command needs at least its name");
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (std::string_view a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    char* cmd = nullptr;
    int n = redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lengths.data());
    if (n < 0 || !cmd) fatal("redis: cannot encode a command of %zu arguments (out of memory)", args.size());
    bytes_.append(cmd, static_cast<std::size_t>(n));
    redisFreeCommand(cmd);
    ++count_;
    return *this;
}

Commands& Commands::add(const std::vector<std::string>& args) {
    std::vector<std::string_view> views(args.begin(), args.end());
    return add(std::span<const std::string_view>(views));
}

namespace {

// hiredis's reply tree, converted once into the owned Reply.
Reply convert(const redisReply* r) {
    Reply out;
    switch (r->type) {
        case REDIS_REPLY_STRING: out.type = ReplyType::string; break;
        case REDIS_REPLY_STATUS: out.type = ReplyType::status; break;
        case REDIS_REPLY_ERROR: out.type = ReplyType::error; break;
        case REDIS_REPLY_INTEGER: out.type = ReplyType::integer; break;
        case REDIS_REPLY_ARRAY: out.type = ReplyType::array; break;
        default: out.type = ReplyType::nil; break;
    }
    if (r->str) out.str.assign(r->str, r->len);
    out.integer = r->integer;
    if (r->type == REDIS_REPLY_ARRAY) {
        out.elements.reserve(r->elements);
        for (std::size_t i = 0; i < r->elements; ++i) out.elements.push_back(convert(r->element[i]));
    }
    return out;
}

}  // namespace

ReplyReader::ReplyReader() { reset(); }

ReplyReader::~ReplyReader() {
    if (reader_) redisReaderFree(reader_);
}

void ReplyReader::reset() {
    if (reader_) redisReaderFree(reader_);
    reader_ = redisReaderCreate();
    if (!reader_) fatal("redis: cannot create a reply reader (out of memory)");
    error_.clear();
}

void ReplyReader::feed(const char* data, std::size_t n) {
    if (redisReaderFeed(reader_, data, n) != REDIS_OK) error_ = reader_->errstr;
}

ReplyReader::Next ReplyReader::next(Reply& out) {
    if (!error_.empty()) return Next::protocol_error;
    void* reply = nullptr;
    if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
        error_ = reader_->errstr[0] ? reader_->errstr : "malformed reply";
        return Next::protocol_error;
    }
    if (!reply) return Next::need_more;
    out = convert(static_cast<const redisReply*>(reply));
    freeReplyObject(reply);
    return Next::reply;
}

}  // namespace tendril::redis
