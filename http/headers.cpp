// Headers (see headers.hpp).
#include "tendril/http/headers.hpp"

#include "tendril/http/detail/byte_class.hpp"

#include <cstring>

namespace tendril::http {

namespace {
char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }
std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}
}  // namespace

namespace {
// RFC 9110 5.6.2: tchar.
constexpr detail::ByteClass kToken("!#$%&'*+-.^_`|~");
}  // namespace

bool is_token_char(unsigned char c) { return kToken(c); }

bool valid_field_name(std::string_view name) {
    // Without an early exit: names are short, and a branch per byte costs
    // more than the lookups (every header of every response comes here).
    bool ok = !name.empty();
    for (unsigned char c : name) ok &= kToken(c);
    return ok;
}

bool valid_field_value(std::string_view s) {
    // Eight bytes at a time (every header of every response is checked): a
    // byte below 0x20 or equal to 0x7f is looked at closely, being a tab or not.
    constexpr std::uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    const char* p = s.data();
    std::size_t n = s.size();
    for (; n >= 8; p += 8, n -= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        std::uint64_t below_space = (w - ones * 0x20) & ~w & highs;
        std::uint64_t del = ((w ^ (ones * 0x7f)) - ones) & ~(w ^ (ones * 0x7f)) & highs;
        if (below_space | del) break;
    }
    for (; n > 0; ++p, --n) {
        auto c = static_cast<unsigned char>(*p);
        if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
    }
    return true;
}

bool detail::iequals_same_size(const char* a, const char* b, std::size_t n) {
    if (std::memcmp(a, b, n) == 0) return true;  // the usual case: the same spelling
    for (std::size_t i = 0; i < n; ++i)
        if (a[i] != b[i] && lower(a[i]) != lower(b[i])) return false;
    return true;
}

Headers::Field Headers::operator[](std::size_t i) const {
    const Span& s = fields_[i];
    return {std::string_view(data_).substr(s.name_off, s.name_len),
            std::string_view(data_).substr(s.value_off, s.value_len)};
}

void Headers::add(std::string_view name, std::string_view value) {
    begin_field();
    append_name(name);
    append_value(value);
}

void Headers::begin_field() {
    auto off = static_cast<std::uint32_t>(data_.size());
    fields_.push_back(Span{off, 0, off, 0});
}

void Headers::append_name(std::string_view piece) {
    Span& s = fields_.back();
    data_.append(piece);
    s.name_len += static_cast<std::uint32_t>(piece.size());
    s.value_off = static_cast<std::uint32_t>(data_.size());
}

void Headers::append_value(std::string_view piece) {
    data_.append(piece);
    fields_.back().value_len += static_cast<std::uint32_t>(piece.size());
}

void Headers::set(std::string_view name, std::string_view value) {
    remove(name);
    add(name, value);
}

void Headers::remove(std::string_view name) {
    Headers kept;
    bool removed = false;
    for (Field f : *this) {
        if (iequals(f.name, name)) removed = true;
        else kept.add(f.name, f.value);
    }
    if (removed) *this = std::move(kept);
}

void Headers::clear() {
    data_.clear();
    fields_.clear();
}

std::optional<std::string_view> Headers::get(std::string_view name) const {
    for (std::size_t i = 0; i < fields_.size(); ++i) {
        Field f = (*this)[i];
        if (iequals(f.name, name)) return f.value;
    }
    return std::nullopt;
}

std::string_view Headers::get(std::string_view name, std::string_view fallback) const {
    auto v = get(name);
    return v ? *v : fallback;
}

std::vector<std::string_view> Headers::get_all(std::string_view name) const {
    std::vector<std::string_view> out;
    for (Field f : *this)
        if (iequals(f.name, name)) out.push_back(f.value);
    return out;
}

bool Headers::has_token(std::string_view name, std::string_view token) const {
    for (Field f : *this) {
        if (!iequals(f.name, name)) continue;
        std::string_view v = f.value;
        while (!v.empty()) {
            auto comma = v.find(',');
            std::string_view item = trim(v.substr(0, comma));
            if (iequals(item, token)) return true;
            if (comma == std::string_view::npos) break;
            v.remove_prefix(comma + 1);
        }
    }
    return false;
}

void Headers::write_to(std::string& out) const {
    for (Field f : *this) {
        out.append(f.name);
        out.append(": ");
        out.append(f.value);
        out.append("\r\n");
    }
}

bool operator==(const Headers& a, const Headers& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].name != b[i].name || a[i].value != b[i].value) return false;
    return true;
}

}  // namespace tendril::http
