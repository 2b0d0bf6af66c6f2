// From a request target to a path relative to a served directory, refusing
// everything that could leave it: "..", encoded or not, NUL bytes, bad
// percent-encoding. (Symlinks are the kernel's job: see core/open_beneath.)
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tendril::http {

// "/a/b%20c.txt?x" -> "a/b c.txt". nullopt and *why set when refused. An
// empty result names the directory itself.
std::optional<std::string> target_to_relative_path(std::string_view target, std::string* why = nullptr);

// A Content-Type for a file name, from its extension.
std::string_view guess_content_type(std::string_view name);

}  // namespace tendril::http
