// PollTable: PollDescs indexed by descriptor number, as Redis indexes its
// file events. Descriptors are small dense integers, so a table of fixed-size
// chunks gives O(1) lookup and addresses that never move (fibers hold
// PollDesc pointers across waits).
#pragma once

#include "tendril/sched/detail/poll_desc.hpp"

#include <memory>
#include <vector>

namespace tendril {

class PollTable {
public:
    static constexpr int kChunk = 256;

    PollDesc* find(int fd) const {
        std::size_t c = static_cast<std::size_t>(fd) / kChunk;
        if (fd < 0 || c >= chunks_.size() || !chunks_[c]) return nullptr;
        return &chunks_[c][static_cast<std::size_t>(fd) % kChunk];
    }
    PollDesc* get(int fd) {
        std::size_t c = static_cast<std::size_t>(fd) / kChunk;
        if (c >= chunks_.size()) chunks_.resize(c + 1);
        if (!chunks_[c]) chunks_[c] = std::make_unique<PollDesc[]>(kChunk);
        PollDesc* pd = &chunks_[c][static_cast<std::size_t>(fd) % kChunk];
        pd->fd = fd;
        return pd;
    }

private:
    std::vector<std::unique_ptr<PollDesc[]>> chunks_;
};

}  // namespace tendril
