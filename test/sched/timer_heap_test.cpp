// TimerHeap against a reference model: random inserts and cancels, then
// everything pops in (deadline, insertion) order.
#include <doctest/doctest.h>

#include <tendril/sched/timer_heap.hpp>

#include <map>
#include <random>
#include <vector>

using namespace tendril;

TEST_CASE("timer heap: random insert/cancel keeps deadline order, ties in insertion order") {
    std::mt19937 rng(42);
    TimerHeap heap;
    std::vector<TimerNode> nodes(5000);
    std::multimap<std::pair<long, std::uint64_t>, TimerNode*> model;
    std::map<TimerNode*, std::pair<long, std::uint64_t>> key;
    Instant base = Clock::now();
    std::uint64_t seq = 0;
    for (int round = 0; round < 20000; ++round) {
        TimerNode* n = &nodes[rng() % nodes.size()];
        if (rng() % 3 == 0) {
            heap.cancel(n);
            if (key.count(n)) {
                auto k = key[n];
                for (auto it = model.find(k); it != model.end(); ++it)
                    if (it->second == n) {
                        model.erase(it);
                        break;
                    }
                key.erase(n);
            }
        } else {
            long at = static_cast<long>(rng() % 100);  // many ties
            if (key.count(n)) {
                auto k = key[n];
                for (auto it = model.find(k); it != model.end(); ++it)
                    if (it->second == n) {
                        model.erase(it);
                        break;
                    }
            }
            heap.insert(n, base + std::chrono::milliseconds(at));
            key[n] = {at, seq};
            model.emplace(std::make_pair(at, seq), n);
            ++seq;
        }
        REQUIRE(heap.size() == model.size());
    }
    Instant far = base + std::chrono::hours(1);
    for (auto& [k, n] : model) {
        TimerNode* got = heap.pop_due(far);
        REQUIRE(got == n);
        CHECK_FALSE(got->queued());
    }
    CHECK(heap.empty());
    CHECK(heap.pop_due(far) == nullptr);
}

TEST_CASE("pop_due leaves timers that are not due") {
    TimerHeap heap;
    TimerNode a, b;
    Instant t = Clock::now();
    heap.insert(&a, t + 10ms);
    heap.insert(&b, t + 20ms);
    CHECK(heap.pop_due(t) == nullptr);
    CHECK(heap.pop_due(t + 15ms) == &a);
    CHECK(heap.pop_due(t + 15ms) == nullptr);
    CHECK(heap.next() == t + 20ms);
    heap.cancel(&b);
    heap.cancel(&b);  // twice is harmless
    CHECK(heap.empty());
}
