// parse_range: the one-range forms blobd answers with 206, and what it ignores.
#include <doctest/doctest.h>

#include <tendril/http/range.hpp>

using namespace tendril::http;

TEST_CASE("parse_range: the range unit is case-insensitive (RFC 9110 14.1)") {
    for (const char* h : {"bytes=0-9", "Bytes=0-9", "BYTES=0-9", " bYtEs=0-9 "}) {
        INFO(h);
        ByteRange r = parse_range(h, 100);
        CHECK(r.kind == ByteRange::Kind::satisfiable);
        CHECK(r.first == 0);
        CHECK(r.last == 9);
    }
    CHECK(parse_range("bytesx=0-9", 100).kind == ByteRange::Kind::none);
    CHECK(parse_range("items=0-9", 100).kind == ByteRange::Kind::none);
    CHECK(parse_range("byte", 100).kind == ByteRange::Kind::none);
}

TEST_CASE("parse_range: suffix, open and clamped ranges; unsatisfiable ones") {
    ByteRange r = parse_range("bytes=-10", 100);
    CHECK((r.kind == ByteRange::Kind::satisfiable && r.first == 90 && r.last == 99));
    r = parse_range("bytes=95-", 100);
    CHECK((r.kind == ByteRange::Kind::satisfiable && r.first == 95 && r.last == 99));
    r = parse_range("bytes=95-1000", 100);
    CHECK((r.kind == ByteRange::Kind::satisfiable && r.last == 99));
    CHECK(parse_range("bytes=100-", 100).kind == ByteRange::Kind::unsatisfiable);
    CHECK(parse_range("bytes=-0", 100).kind == ByteRange::Kind::unsatisfiable);
    CHECK(parse_range("bytes=5-2", 100).kind == ByteRange::Kind::none);
    CHECK(parse_range("bytes=0-1,5-6", 100).kind == ByteRange::Kind::none);
}

TEST_CASE("parse_range: empty list elements are not a second range (RFC 9110 5.6.1.2)") {
    for (const char* h : {"bytes=0-9,", "bytes=, 0-9", "bytes=,,0-9 ,\t,", "bytes=0-9 ,"}) {
        INFO(h);
        ByteRange r = parse_range(h, 100);
        CHECK(r.kind == ByteRange::Kind::satisfiable);
        CHECK(r.first == 0);
        CHECK(r.last == 9);
    }
    CHECK(parse_range("bytes=,", 100).kind == ByteRange::Kind::none);
    CHECK(parse_range("bytes=0-1, ,5-6", 100).kind == ByteRange::Kind::none);
}

TEST_CASE("parse_range: an empty representation") {
    // An int-range cannot start inside it; a suffix range is satisfied by all
    // of it (RFC 9110 14.1.1), which no 206 can carry: the whole, as a 200.
    CHECK(parse_range("bytes=0-", 0).kind == ByteRange::Kind::unsatisfiable);
    CHECK(parse_range("bytes=0-0", 0).kind == ByteRange::Kind::unsatisfiable);
    CHECK(parse_range("bytes=-5", 0).kind == ByteRange::Kind::none);
    CHECK(parse_range("bytes=-0", 0).kind == ByteRange::Kind::unsatisfiable);
}
