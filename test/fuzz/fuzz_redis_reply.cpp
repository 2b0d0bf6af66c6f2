// fuzz_redis_reply: the input is what a Redis server sends. It is fed to
// ReplyReader whole and in pieces: the replies, and where a protocol error
// stops them, must not depend on the split. Each reply, written back as
// canonical RESP, must parse into the same reply again (the conversion of
// hiredis's tree keeps every type, string byte, integer and element).
//
// hiredis 0.14 (Debian 12) has no limit on a declared array's length and
// allocates it up front ("*4000000000\r\n" asks calloc for 32 GB), so inputs
// declaring more than 4096 elements are skipped: Redis, which we trust, does
// not send them, and a hostile "server" is outside what the client defends.
#include "fuzz_common.hpp"

#include <tendril/net/redis/protocol.hpp>

#include <cctype>

using namespace tendril::redis;

namespace {

bool declares_a_huge_array(std::string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '*') continue;
        std::size_t j = i + 1, digits = 0;
        unsigned long long v = 0;
        while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])) && digits < 19) {
            v = v * 10 + static_cast<unsigned>(s[j] - '0');
            ++j, ++digits;
        }
        if (digits == 19 || v > 4096) return true;
    }
    return false;
}

struct Outcome {
    std::vector<std::string> replies;
    bool protocol_error = false;
};

Outcome parse(std::string_view s, const std::vector<std::size_t>& cuts) {
    Outcome out;
    ReplyReader reader;
    std::size_t at = 0;
    auto drain = [&] {
        Reply r;
        for (;;) {
            auto next = reader.next(r);
            if (next == ReplyReader::Next::reply) {
                out.replies.push_back(r.to_string() + "|" + to_string(r.type));
                continue;
            }
            if (next == ReplyReader::Next::protocol_error) out.protocol_error = true;
            return;
        }
    };
    for (std::size_t cut : cuts) {
        if (out.protocol_error) break;
        reader.feed(s.data() + at, cut - at);
        at = cut;
        drain();
    }
    if (!out.protocol_error) {
        reader.feed(s.data() + at, s.size() - at);
        drain();
    }
    return out;
}

void encode(const Reply& r, std::string& out) {
    switch (r.type) {
        case ReplyType::nil: out += "$-1\r\n"; return;
        case ReplyType::status: out += "+" + r.str + "\r\n"; return;
        case ReplyType::error: out += "-" + r.str + "\r\n"; return;
        case ReplyType::integer: out += ":" + std::to_string(r.integer) + "\r\n"; return;
        case ReplyType::string: out += "$" + std::to_string(r.str.size()) + "\r\n" + r.str + "\r\n"; return;
        case ReplyType::array:
            out += "*" + std::to_string(r.elements.size()) + "\r\n";
            for (const Reply& e : r.elements) encode(e, out);
            return;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view s(reinterpret_cast<const char*>(data), size);
    if (declares_a_huge_array(s)) return 0;

    Outcome whole = parse(s, {});
    Outcome split = parse(s, fuzz::cuts_every(s.size(), 1));
    fuzz::Rng rng(s);
    Outcome cut = parse(s, fuzz::cuts_random(rng, s.size(), 16));
    Outcome syntax = parse(s, fuzz::cuts_at_syntax(s));
    FUZZ_CHECK(split.replies == whole.replies, "byte-by-byte feeding changed the replies: " + fuzz::show(s));
    FUZZ_CHECK(cut.replies == whole.replies, "feeding in pieces changed the replies: " + fuzz::show(s));
    FUZZ_CHECK(syntax.replies == whole.replies, "cutting at CR/LF changed the replies: " + fuzz::show(s));
    for (const Outcome* o : {&split, &cut, &syntax})
        FUZZ_CHECK(o->protocol_error == whole.protocol_error, "the split changed the protocol error: " + fuzz::show(s));

    // Round trip: each reply, re-encoded, parses back into itself.
    ReplyReader reader;
    reader.feed(s.data(), s.size());
    Reply r;
    while (reader.next(r) == ReplyReader::Next::reply) {
        std::string wire;
        encode(r, wire);
        ReplyReader again;
        again.feed(wire.data(), wire.size());
        Reply back;
        FUZZ_CHECK(again.next(back) == ReplyReader::Next::reply, "a re-encoded reply did not parse: " + fuzz::show(wire));
        FUZZ_CHECK(back.to_string() == r.to_string() && back.type == r.type,
                   "re-encoded " + fuzz::show(r.to_string()) + " came back as " + fuzz::show(back.to_string()));
        Reply none;
        FUZZ_CHECK(again.next(none) == ReplyReader::Next::need_more, "a re-encoded reply left bytes: " + fuzz::show(wire));
    }
    return 0;
}
