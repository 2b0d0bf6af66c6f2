// ByteClass: a set of bytes known at compile time -- letters, digits and the
// given punctuation -- tested with one table lookup (header names, Host).
#pragma once

#include <string_view>

namespace tendril::http::detail {

struct ByteClass {
    bool has[256] = {};
    constexpr explicit ByteClass(std::string_view punctuation) {
        for (int c = 'a'; c <= 'z'; ++c) has[c] = true;
        for (int c = 'A'; c <= 'Z'; ++c) has[c] = true;
        for (int c = '0'; c <= '9'; ++c) has[c] = true;
        for (char c : punctuation) has[static_cast<unsigned char>(c)] = true;
    }
    constexpr bool operator()(unsigned char c) const { return has[c]; }
};

}  // namespace tendril::http::detail
