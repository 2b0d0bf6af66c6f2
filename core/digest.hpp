// Digest: one interface over OpenSSL's message digests (md5, sha1, sha256,
// sha512, via EVP) and xxHash (xxh64, xxh3, xxh128), fed incrementally so a
// body of any size is hashed as it streams in.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tendril {

class Digest {
public:
    // nullptr for an unknown name.
    static std::unique_ptr<Digest> create(std::string_view name);
    // The accepted names, in a stable order.
    static const std::vector<std::string_view>& names();

    virtual ~Digest() = default;
    virtual void update(const void* data, std::size_t n) = 0;
    void update(std::string_view s) { update(s.data(), s.size()); }
    // Lowercase hex; xxHash values in their canonical big-endian form, as
    // the xxhsum tool prints them. Ends the digest.
    virtual std::string hex_digest() = 0;
};

// Lowercase hex of bytes.
std::string to_hex(const unsigned char* p, std::size_t n);

}  // namespace tendril
