// PollFd: descriptors the poller cannot watch (regular files) stay ready
// after short reads, and gathered I/O whose later pieces lie on a compacted
// fiber stack restores them (the EFAULT path) instead of failing.
#include <doctest/doctest.h>

#include <tendril/net/poll_fd.hpp>
#include <tendril/net/socket.hpp>
#include <tendril/sched/scheduler.hpp>
#include <tendril/sched/wait_group.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <utility>

using namespace tendril;

namespace {

// A temporary regular file holding `content`, opened for reading.
struct TempFile {
    char path[64] = "/tmp/tendril-pollfd-XXXXXX";
    int fd = -1;
    explicit TempFile(const std::string& content) {
        int w = ::mkstemp(path);
        REQUIRE(w >= 0);
        REQUIRE(::write(w, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
        ::close(w);
        fd = ::open(path, O_RDONLY);
        REQUIRE(fd >= 0);
    }
    ~TempFile() { ::unlink(path); }
};

SchedulerOptions quick_compaction() {
    SchedulerOptions o;
    o.reclaim = StackReclaim::compact;
    o.reclaim_after = std::chrono::milliseconds(1);
    return o;
}

}  // namespace

TEST_CASE("a regular file through PollFd: short reads, then EOF, never a parked read") {
    TempFile file("ten bytes!");
    run([&] {
        PollFd fd(file.fd);
        char buf[64];
        // A deadline only so that the old behaviour (parking forever after
        // the short read) fails the test instead of hanging it.
        IoResult r = fd.read(buf, sizeof buf, Deadline::after(std::chrono::seconds(2)));
        REQUIRE(r.ok());
        CHECK(std::string(buf, r.n) == "ten bytes!");
        r = fd.read(buf, sizeof buf, Deadline::after(std::chrono::seconds(2)));
        CHECK(r.status == Status::eof);
        CHECK(fd.wait_readable(Deadline::after(std::chrono::seconds(2))) == Status::ok);
        fd.consumed_read();  // what accept/sendfile callers do: no effect here
        CHECK(fd.wait_readable(Deadline::after(std::chrono::seconds(2))) == Status::ok);
    });
}

TEST_CASE("a regular file adopted as a Socket reads to its end in small pieces") {
    std::string content(10000, 'x');
    for (std::size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>('a' + i % 26);
    TempFile file(content);
    std::string got;
    run([&] {
        Socket s = Socket::adopt(file.fd);
        char buf[4096];
        for (;;) {
            IoResult r = s.read_some(buf, sizeof buf, Deadline::after(std::chrono::seconds(2)));
            if (!r) {
                CHECK(r.status == Status::eof);
                break;
            }
            got.append(buf, r.n);
        }
    });
    CHECK(got == content);
}

// Stacks of this thread's default pool that are compacted right now.
std::size_t compacted_stacks() { return StackPool::for_thread(StackOptions{}).stats().compacted; }

// The owner parks with a buffer on its stack; a second fiber, touching
// nothing on that stack in user space (sockets on the heap, pointers and
// lengths captured by value), hands the buffer to the kernel, which answers
// EFAULT: the I/O layer must restore the stack and retry.
TEST_CASE("writev: a later iovec on a compacted stack is restored and the write succeeds") {
    Scheduler s(quick_compaction());
    std::string got;
    s.go([&] {
        auto sockets = std::make_unique<std::pair<Socket, Socket>>(Socket::pair());
        static char head[] = "head|";
        char tail[64];
        int tail_len = std::snprintf(tail, sizeof tail, "tail from a parked fiber's frame");
        WaitGroup wg;
        wg.add();
        go([sock = &sockets->first, tail_ptr = &tail[0], tail_len, wg = &wg] {
            REQUIRE(sleep_for(std::chrono::milliseconds(30)) == Status::ok);
            CHECK(compacted_stacks() == 1);  // the owner's
            iovec iov[2] = {{head, std::strlen(head)}, {tail_ptr, static_cast<std::size_t>(tail_len)}};
            IoResult r = sock->writev(iov, 2, Deadline::after(std::chrono::seconds(1)));
            CHECK(r.ok());
            CHECK(compacted_stacks() == 0);  // restored by the EFAULT path, not by a fault
            wg->done();
        });
        REQUIRE(wg.wait() == Status::ok);
        char buf[128];
        IoResult r = sockets->second.read_exact(buf, std::strlen(head) + static_cast<std::size_t>(tail_len),
                                                Deadline::after(std::chrono::seconds(1)));
        CHECK(r.ok());
        got.assign(buf, r.n);
    });
    s.run();
    CHECK(got == "head|tail from a parked fiber's frame");
}

TEST_CASE("readv: a later iovec on a compacted stack is restored and the read succeeds") {
    Scheduler s(quick_compaction());
    std::string got;
    s.go([&] {
        auto sockets = std::make_unique<std::pair<Socket, Socket>>(Socket::pair());
        static char first[4];
        char second[32] = {};
        REQUIRE(sockets->first.write_all("abcdsecond half").ok());
        WaitGroup wg;
        wg.add();
        go([sock = &sockets->second, second_ptr = &second[0], wg = &wg] {
            REQUIRE(sleep_for(std::chrono::milliseconds(30)) == Status::ok);
            CHECK(compacted_stacks() == 1);
            iovec iov[2] = {{first, sizeof first}, {second_ptr, 31}};
            IoResult r = sock->fd().readv(iov, 2, Deadline::after(std::chrono::seconds(1)));
            CHECK(r.ok());
            CHECK(r.n == 15);
            CHECK(compacted_stacks() == 0);
            wg->done();
        });
        REQUIRE(wg.wait() == Status::ok);
        got.assign(first, sizeof first);
        got.append(second);
    });
    s.run();
    CHECK(got == "abcdsecond half");
}
