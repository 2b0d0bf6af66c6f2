// Headers: an ordered, multi-valued, case-insensitive header list.
//
// A plain value (copy it, send it through a Channel). All names and values
// live in one string, so parsing a request costs one growing allocation, not
// two per header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tendril::http {

namespace detail {
bool iequals_same_size(const char* a, const char* b, std::size_t n);
}
// Inline for the size test: most comparisons (a header name against the ones
// framing depends on) fail on it.
inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && detail::iequals_same_size(a.data(), b.data(), a.size());
}

// RFC 9110 5.6.2: a field name is a token.
bool is_token_char(unsigned char c);
bool valid_field_name(std::string_view name);
// RFC 9110 5.5: no control characters in a field value but HTAB (so no CR
// or LF: no response splitting).
bool valid_field_value(std::string_view value);

class Headers {
public:
    struct Field {
        std::string_view name;
        std::string_view value;
    };

    void add(std::string_view name, std::string_view value);
    // Replace every field of that name with one.
    void set(std::string_view name, std::string_view value);
    void remove(std::string_view name);
    void clear();
    void swap(Headers& other) noexcept {
        data_.swap(other.data_);
        fields_.swap(other.fields_);
    }

    // The first value of the name, case-insensitively.
    std::optional<std::string_view> get(std::string_view name) const;
    std::string_view get(std::string_view name, std::string_view fallback) const;
    std::vector<std::string_view> get_all(std::string_view name) const;
    bool contains(std::string_view name) const { return get(name).has_value(); }
    // True if a comma-separated list header (Connection, Expect) holds token.
    bool has_token(std::string_view name, std::string_view token) const;

    std::size_t size() const { return fields_.size(); }
    bool empty() const { return fields_.empty(); }
    Field operator[](std::size_t i) const;
    std::size_t byte_size() const { return data_.size(); }

    class iterator {
    public:
        iterator(const Headers* h, std::size_t i) : h_(h), i_(i) {}
        Field operator*() const { return (*h_)[i_]; }
        iterator& operator++() {
            ++i_;
            return *this;
        }
        bool operator==(const iterator& o) const { return i_ == o.i_; }

    private:
        const Headers* h_;
        std::size_t i_;
    };
    iterator begin() const { return iterator(this, 0); }
    iterator end() const { return iterator(this, fields_.size()); }

    // "Name: value\r\n" for each field.
    void write_to(std::string& out) const;

    // For the parser: grow the last field (callbacks arrive in pieces).
    void begin_field();
    void append_name(std::string_view piece);
    void append_value(std::string_view piece);

    friend bool operator==(const Headers& a, const Headers& b);

private:
    struct Span {
        std::uint32_t name_off, name_len, value_off, value_len;
    };
    std::string data_;
    std::vector<Span> fields_;
};

}  // namespace tendril::http
