// fuzz_file_path: target_to_relative_path(target), origin or absolute form.
// A path it returns never has a ".." (or "." or empty) segment, never starts
// with '/', never holds a NUL, and joined under a root it stays there
// lexically. It is also stable: the query and fragment do not matter, the
// target's path alone (target_path) maps the same, percent-encoding the result
// and mapping it again gives it back, and mapping "/" + result again gives it
// back when no '%' could be decoded a second time.
#include "fuzz_common.hpp"

#include <tendril/http/file_path.hpp>
#include <tendril/http/url.hpp>

#include <filesystem>

using namespace tendril::http;

namespace {

std::string percent_encode_all(std::string_view s) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                     c == '_' || c == '~' || c == '/';
        if (plain) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

void check_relative(std::string_view target, const std::string& rel) {
    std::string ctx = "target " + fuzz::show(target) + " -> " + fuzz::show(rel);
    FUZZ_CHECK(rel.empty() || rel.front() != '/', "absolute; " + ctx);
    FUZZ_CHECK(rel.find('\0') == std::string::npos, "NUL; " + ctx);
    FUZZ_CHECK(rel.empty() || rel.back() != '/', "trailing slash; " + ctx);
    std::string_view rest = rel;
    while (!rest.empty()) {
        auto slash = rest.find('/');
        std::string_view seg = rest.substr(0, slash);
        FUZZ_CHECK(seg != "..", "a .. segment; " + ctx);
        FUZZ_CHECK(seg != ".", "a . segment; " + ctx);
        FUZZ_CHECK(!seg.empty(), "an empty segment; " + ctx);
        if (slash == std::string_view::npos) break;
        rest.remove_prefix(slash + 1);
    }
    // Joined under a root, it stays beneath it.
    namespace fs = std::filesystem;
    const fs::path root = "/srv/www";
    fs::path joined = (root / fs::path(rel)).lexically_normal();
    fs::path back = joined.lexically_relative(root);
    FUZZ_CHECK(!back.empty(), "leaves the root: " + joined.string() + "; " + ctx);
    FUZZ_CHECK(back.begin() == back.end() || *back.begin() != "..", "leaves the root: " + joined.string() + "; " + ctx);
    std::string j = joined.string();
    FUZZ_CHECK(j == "/srv/www" || j == "/srv/www/" || j.rfind("/srv/www/", 0) == 0,
               "leaves the root: " + j + "; " + ctx);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view target(reinterpret_cast<const char*>(data), size);
    std::string why;
    auto rel = target_to_relative_path(target, &why);
    if (!rel) {
        FUZZ_CHECK(!why.empty(), "refused without a reason: " + fuzz::show(target));
        // A refused path stays refused with a query behind it.
        std::string with_query = std::string(target) + "?q=1";
        if (target.find_first_of("?#") == std::string_view::npos)
            FUZZ_CHECK(!target_to_relative_path(with_query), "a query makes it acceptable: " + fuzz::show(target));
        return 0;
    }
    check_relative(target, *rel);

    // The query and the fragment are not part of the path.
    std::string q = std::string(target) + "?../../etc/passwd#x";
    auto rq = target_to_relative_path(q);
    FUZZ_CHECK(rq && *rq == *rel, "a query changes the path: " + fuzz::show(target));

    // Encoding the result and mapping it again gives it back.
    std::string enc = "/" + percent_encode_all(*rel);
    auto re = target_to_relative_path(enc);
    FUZZ_CHECK(re && *re == *rel, "encode/map round trip: " + fuzz::show(*rel) + " -> " + fuzz::show(enc) + " -> " +
                                      (re ? fuzz::show(*re) : std::string("refused")));

    // Idempotent when nothing could be decoded twice.
    if (rel->find_first_of("%?#") == std::string::npos) {
        auto r2 = target_to_relative_path("/" + *rel);
        FUZZ_CHECK(r2 && *r2 == *rel, "not idempotent: " + fuzz::show(*rel));
    } else if (auto r2 = target_to_relative_path("/" + *rel)) {
        // Mapping the decoded result again (a double decode, which a server
        // must never do) still cannot escape the root.
        check_relative("/" + *rel, *r2);
    }

    // The same as mapping the target's path alone (absolute form included).
    std::string_view path = target_path(target);
    FUZZ_CHECK(!path.empty() && path.front() == '/', "target_path: " + fuzz::show(path));
    FUZZ_CHECK(path.find_first_of("?#") == std::string_view::npos, "target_path kept the query: " + fuzz::show(path));
    auto rp = target_to_relative_path(path);
    FUZZ_CHECK(rp && *rp == *rel, "the path alone maps elsewhere: " + fuzz::show(path));

    // The mapping only removes: the result is no longer than the decoded path.
    auto decoded = percent_decode(path);
    FUZZ_CHECK(decoded.has_value(), "accepted with bad percent-encoding: " + fuzz::show(target));
    FUZZ_CHECK(rel->size() <= decoded->size(), "the result grew: " + fuzz::show(target));
    return 0;
}
