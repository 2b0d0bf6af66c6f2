// Digest implementations (see digest.hpp).
#include "tendril/core/digest.hpp"

#include <openssl/evp.h>
#include <xxhash.h>

#include <stdexcept>

namespace tendril {

std::string to_hex(const unsigned char* p, std::size_t n) {
    static const char* hex = "0123456789abcdef";
    std::string s(n * 2, '0');
    for (std::size_t i = 0; i < n; ++i) {
        s[2 * i] = hex[p[i] >> 4];
        s[2 * i + 1] = hex[p[i] & 15];
    }
    return s;
}

namespace {

class EvpDigest final : public Digest {
public:
    explicit EvpDigest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) {
        if (!ctx_ || EVP_DigestInit_ex(ctx_, md, nullptr) != 1) throw std::runtime_error("EVP_DigestInit_ex failed");
    }
    ~EvpDigest() override { EVP_MD_CTX_free(ctx_); }
    void update(const void* data, std::size_t n) override { EVP_DigestUpdate(ctx_, data, n); }
    std::string hex_digest() override {
        unsigned char out[EVP_MAX_MD_SIZE];
        unsigned len = 0;
        EVP_DigestFinal_ex(ctx_, out, &len);
        return to_hex(out, len);
    }

private:
    EVP_MD_CTX* ctx_;
};

class Xxh64 final : public Digest {
public:
    Xxh64() : st_(XXH64_createState()) { XXH64_reset(st_, 0); }
    ~Xxh64() override { XXH64_freeState(st_); }
    void update(const void* data, std::size_t n) override { XXH64_update(st_, data, n); }
    std::string hex_digest() override {
        XXH64_canonical_t c;
        XXH64_canonicalFromHash(&c, XXH64_digest(st_));
        return to_hex(c.digest, sizeof c.digest);
    }

private:
    XXH64_state_t* st_;
};

class Xxh3 final : public Digest {
public:
    explicit Xxh3(bool wide) : st_(XXH3_createState()), wide_(wide) {
        if (wide_) XXH3_128bits_reset(st_);
        else XXH3_64bits_reset(st_);
    }
    ~Xxh3() override { XXH3_freeState(st_); }
    void update(const void* data, std::size_t n) override {
        if (wide_) XXH3_128bits_update(st_, data, n);
        else XXH3_64bits_update(st_, data, n);
    }
    std::string hex_digest() override {
        if (wide_) {
            XXH128_canonical_t c;
            XXH128_canonicalFromHash(&c, XXH3_128bits_digest(st_));
            return to_hex(c.digest, sizeof c.digest);
        }
        XXH64_canonical_t c;
        XXH64_canonicalFromHash(&c, XXH3_64bits_digest(st_));
        return to_hex(c.digest, sizeof c.digest);
    }

private:
    XXH3_state_t* st_;
    bool wide_;
};

}  // namespace

const std::vector<std::string_view>& Digest::names() {
    static const std::vector<std::string_view> n = {"md5", "sha1", "sha256", "sha512", "xxh64", "xxh3", "xxh128"};
    return n;
}

std::unique_ptr<Digest> Digest::create(std::string_view name) {
    if (name == "md5") return std::make_unique<EvpDigest>(EVP_md5());
    if (name == "sha1") return std::make_unique<EvpDigest>(EVP_sha1());
    if (name == "sha256") return std::make_unique<EvpDigest>(EVP_sha256());
    if (name == "sha512") return std::make_unique<EvpDigest>(EVP_sha512());
    if (name == "xxh64") return std::make_unique<Xxh64>();
    if (name == "xxh3") return std::make_unique<Xxh3>(false);
    if (name == "xxh128") return std::make_unique<Xxh3>(true);
    return nullptr;
}

}  // namespace tendril
