// WorkPool: threads for calls that would block the scheduler's thread
// (getaddrinfo, file I/O, a blocking library), as Photon's WorkPool and
// gevent's threadpool. The calling fiber parks; the others keep running.
//
//   int rc = run_blocking([&] { return ::fsync(fd); });
//
// run_blocking() waits for the function whatever happens (it is not
// cancellable), so the function may refer to the caller's locals; the
// caller's stack is pinned meanwhile (never compacted), since another thread
// writes into it.
#pragma once

#include "tendril/core/fatal.hpp"
#include "tendril/sched/event.hpp"
#include "tendril/sched/scheduler.hpp"

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

namespace tendril {

class WorkPool {
public:
    explicit WorkPool(std::size_t threads);
    ~WorkPool();
    WorkPool(const WorkPool&) = delete;
    WorkPool& operator=(const WorkPool&) = delete;

    // The process-wide pool (4 threads, started on first use).
    static WorkPool& shared();

    // Run job on a pool thread; `done` is then posted to `sched`.
    void submit(std::function<void()> job);
    std::size_t threads() const { return threads_.size(); }

private:
    void worker();
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

// Run fn on the shared pool from a fiber and return its result.
template <class F>
auto run_blocking(F&& fn) -> std::invoke_result_t<F&> {
    using R = std::invoke_result_t<F&>;
    Scheduler* s = Scheduler::current();
    if (!s || !Scheduler::current_fiber()) fatal("run_blocking() called outside a fiber");
    StackPin pin;
    CancelShield shield;
    Scheduler::Hold hold(*s);
    Event done;
    std::exception_ptr error;
    std::conditional_t<std::is_void_v<R>, int, std::optional<R>> result{};
    WorkPool::shared().submit([&] {
        try {
            if constexpr (std::is_void_v<R>) fn();
            else result.emplace(fn());
        } catch (...) {
            error = std::current_exception();
        }
        s->post([&done] { done.set(); });
    });
    (void)done.wait();
    if (error) std::rethrow_exception(error);
    if constexpr (!std::is_void_v<R>) return std::move(*result);
}

}  // namespace tendril
