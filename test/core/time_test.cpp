// Deadline arithmetic.
#include <doctest/doctest.h>

#include <tendril/core/time.hpp>

using namespace tendril;

TEST_CASE("Deadline: never, after, expiry, earliest") {
    Deadline never;
    CHECK(never.is_never());
    CHECK_FALSE(never.expired());
    CHECK(never.remaining() == Duration::max());
    Deadline soon = Deadline::after(1h);
    CHECK_FALSE(soon.is_never());
    CHECK_FALSE(soon.expired());
    CHECK(soon.remaining() <= 1h);
    CHECK(soon.remaining() > 59min);
    Deadline past = Deadline::after(-1s);
    CHECK(past.expired());
    CHECK(past.remaining() == Duration::zero());
    CHECK(earliest(soon, never) == soon);
    CHECK(earliest(past, soon) == past);
    CHECK(Deadline::after(Duration::max()).is_never());  // saturates instead of overflowing
}
