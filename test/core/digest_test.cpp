// Digests against known answers (the xxHash ones as xxhsum 0.8.1 prints them).
#include <doctest/doctest.h>

#include <tendril/core/digest.hpp>

#include <string>

using namespace tendril;

namespace {
std::string hash(std::string_view alg, std::string_view data, std::size_t piece = 0) {
    auto d = Digest::create(alg);
    REQUIRE(d != nullptr);
    if (piece == 0) d->update(data);
    else
        for (std::size_t i = 0; i < data.size(); i += piece) d->update(data.substr(i, piece));
    return d->hex_digest();
}
}  // namespace

TEST_CASE("digests of 'hello', whole and fed a byte at a time") {
    struct Row {
        const char* alg;
        const char* hex;
    } rows[] = {
        {"md5", "5d41402abc4b2a76b9719d911017c592"},
        {"sha1", "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"},
        {"sha256", "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"},
        {"sha512", "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043"},
        {"xxh64", "26c7827d889f6da3"},
        {"xxh3", "9555e8555c62dcfd"},
        {"xxh128", "b5e9c1ad071b3e7fc779cfaa5e523818"},
    };
    for (auto& r : rows) {
        INFO(r.alg);
        CHECK(hash(r.alg, "hello") == r.hex);
        CHECK(hash(r.alg, "hello", 1) == r.hex);
    }
    CHECK(Digest::create("crc32") == nullptr);
    CHECK(Digest::names().size() == 7);
}
