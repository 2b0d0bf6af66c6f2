// URL pieces handlers need: percent-decoding and query parameters.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tendril::http {

// %XX decoded; nullopt if a % is not followed by two hex digits. With
// plus_as_space, '+' means ' ' (form encoding, query strings).
std::optional<std::string> percent_decode(std::string_view s, bool plus_as_space = false);

// The path of a request target, without the query: "/a/b" for "/a/b?x=1",
// and for the absolute form servers must also accept (RFC 9112 3.2.2),
// "http://host:8080/a/b?x=1" -> "/a/b".
std::string_view target_path(std::string_view target);

// The first value of `name` in a query string ("a=1&b=2"), decoded.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

}  // namespace tendril::http
