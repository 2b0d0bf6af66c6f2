#include "tendril/net/redis/reply.hpp"

namespace tendril::redis {

const char* to_string(ReplyType t) noexcept {
    switch (t) {
        case ReplyType::nil: return "nil";
        case ReplyType::status: return "status";
        case ReplyType::error: return "error";
        case ReplyType::integer: return "integer";
        case ReplyType::string: return "string";
        case ReplyType::array: return "array";
    }
    return "?";
}

std::string Reply::to_string() const {
    switch (type) {
        case ReplyType::nil: return "(nil)";
        case ReplyType::status: return str;
        case ReplyType::error: return "(error) " + str;
        case ReplyType::integer: return "(integer) " + std::to_string(integer);
        case ReplyType::string: {
            std::string out = "\"";
            for (char c : str) {
                unsigned char u = static_cast<unsigned char>(c);
                if (c == '"' || c == '\\') {
                    out += '\\';
                    out += c;
                } else if (u < 0x20 || u >= 0x7f) {
                    static const char hex[] = "0123456789abcdef";
                    out += "\\x";
                    out += hex[u >> 4];
                    out += hex[u & 15];
                } else {
                    out += c;
                }
            }
            return out + "\"";
        }
        case ReplyType::array: {
            std::string out = "[";
            for (std::size_t i = 0; i < elements.size(); ++i) {
                if (i) out += ", ";
                out += elements[i].to_string();
            }
            return out + "]";
        }
    }
    return "?";
}

}  // namespace tendril::redis
