// One Scheduler per thread (see threads.hpp).
#include "tendril/sched/threads.hpp"

#include "tendril/core/fatal.hpp"

#include <sched.h>

#include <latch>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace tendril {

namespace {
thread_local ThreadGroup* t_group = nullptr;
}

unsigned cpu_count() noexcept {
    cpu_set_t set;
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return static_cast<unsigned>(n);
    }
    unsigned n = std::thread::hardware_concurrency();
    return n ? n : 1;
}

struct ThreadGroup::Shared {
    explicit Shared(unsigned n) : schedulers(n, nullptr), started(n), finished(n) {}
    std::mutex mutex;  // guards schedulers[] against a post racing a thread's end
    std::vector<Scheduler*> schedulers;
    // Every scheduler exists before any fn runs (so fn may post to the
    // others), and none is destroyed before all have finished.
    std::latch started;
    std::latch finished;
};

ThreadGroup::ThreadGroup(unsigned n, SchedulerOptions options)
    : n_(n ? n : cpu_count()), options_(options) {}

ThreadGroup::~ThreadGroup() = default;

ThreadGroup* ThreadGroup::current() noexcept { return t_group; }

void ThreadGroup::run(std::function<void(unsigned)> fn) {
    if (shared_) throw std::logic_error("ThreadGroup::run() called twice");
    if (Scheduler::current()) throw std::logic_error("ThreadGroup::run() called on a thread that runs a Scheduler");
    shared_ = std::make_unique<Shared>(n_);
    auto body = [this, &fn](unsigned index) {
        t_group = this;
        {
            Scheduler s(options_);
            {
                std::lock_guard<std::mutex> lock(shared_->mutex);
                shared_->schedulers[index] = &s;
            }
            shared_->started.arrive_and_wait();
            s.go([&fn, index] { fn(index); }, FiberOptions{"main"});
            s.run();
            {
                std::lock_guard<std::mutex> lock(shared_->mutex);
                shared_->schedulers[index] = nullptr;
            }
            shared_->finished.arrive_and_wait();
        }
        t_group = nullptr;
    };
    std::vector<std::thread> threads;
    threads.reserve(n_ - 1);
    for (unsigned i = 1; i < n_; ++i) threads.emplace_back(body, i);
    body(0);
    for (auto& t : threads) t.join();
    shared_.reset();
}

Scheduler& ThreadGroup::scheduler(unsigned i) {
    if (!shared_ || i >= n_) fatal("ThreadGroup::scheduler(%u): no such running thread", i);
    std::lock_guard<std::mutex> lock(shared_->mutex);
    Scheduler* s = shared_->schedulers[i];
    if (!s) fatal("ThreadGroup::scheduler(%u): that thread has finished", i);
    return *s;
}

void ThreadGroup::post_to(unsigned i, std::function<void()> fn) {
    if (!shared_ || i >= n_) return;
    std::lock_guard<std::mutex> lock(shared_->mutex);
    if (Scheduler* s = shared_->schedulers[i]) s->post(std::move(fn));
}

void ThreadGroup::post_all(const std::function<void()>& fn) {
    for (unsigned i = 0; i < n_; ++i) post_to(i, fn);
}

void run_threads(unsigned n, std::function<void(unsigned)> fn, SchedulerOptions options) {
    ThreadGroup group(n, options);
    group.run(std::move(fn));
}

}  // namespace tendril
