// Request target to relative path, and content types (see file_path.hpp).
#include "tendril/http/file_path.hpp"

#include "tendril/http/url.hpp"

namespace tendril::http {

std::optional<std::string> target_to_relative_path(std::string_view target, std::string* why) {
    auto refuse = [&](const char* reason) -> std::optional<std::string> {
        if (why) *why = reason;
        return std::nullopt;
    };
    target = target_path(target);
    if (target.empty() || target.front() != '/') return refuse("the path must start with /");
    auto decoded = percent_decode(target);
    if (!decoded) return refuse("bad percent-encoding in the path");
    std::string rel;
    std::string_view rest = *decoded;
    while (!rest.empty()) {
        auto slash = rest.find('/');
        std::string_view seg = rest.substr(0, slash);
        rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
        if (seg.empty() || seg == ".") continue;
        if (seg == "..") return refuse("the path leaves the served directory");
        if (seg.find('\0') != std::string_view::npos) return refuse("NUL byte in the path");
        if (!rel.empty()) rel += '/';
        rel += seg;
    }
    return rel;
}

std::string_view guess_content_type(std::string_view name) {
    auto dot = name.rfind('.');
    auto slash = name.rfind('/');
    if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash))
        return "application/octet-stream";
    std::string ext;
    for (char c : name.substr(dot + 1)) ext += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
    static const struct {
        const char* ext;
        const char* type;
    } table[] = {
        {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
        {"txt", "text/plain; charset=utf-8"}, {"css", "text/css"},
        {"js", "text/javascript"},            {"mjs", "text/javascript"},
        {"json", "application/json"},         {"xml", "application/xml"},
        {"svg", "image/svg+xml"},             {"png", "image/png"},
        {"jpg", "image/jpeg"},                {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},                 {"webp", "image/webp"},
        {"ico", "image/vnd.microsoft.icon"},  {"pdf", "application/pdf"},
        {"wasm", "application/wasm"},         {"mp4", "video/mp4"},
        {"webm", "video/webm"},               {"mp3", "audio/mpeg"},
        {"zip", "application/zip"},           {"gz", "application/gzip"},
        {"tar", "application/x-tar"},         {"woff2", "font/woff2"},
        {"csv", "text/csv"},                  {"md", "text/markdown; charset=utf-8"},
    };
    for (auto& e : table)
        if (ext == e.ext) return e.type;
    return "application/octet-stream";
}

}  // namespace tendril::http
