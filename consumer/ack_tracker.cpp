// See ack_tracker.h.
#include "consumer/ack_tracker.h"

namespace warren::consumer {

void AckTracker::received(std::uint64_t tag) {
  outstanding_.insert(tag);
}

void AckTracker::finished(std::uint64_t tag) {
  if (outstanding_.count(tag) != 0) finished_.insert(tag);
}

void AckTracker::settled_otherwise(std::uint64_t tag) {
  outstanding_.erase(tag);
  finished_.erase(tag);
}

std::vector<AckFrame> AckTracker::flush() {
  std::vector<AckFrame> frames;
  if (finished_.empty()) return frames;

  // The finished prefix of the outstanding tags goes in one frame.
  std::uint64_t prefix_end = 0;
  std::size_t prefix_length = 0;
  for (auto tag : outstanding_) {
    if (finished_.count(tag) == 0) break;
    prefix_end = tag;
    ++prefix_length;
  }
  if (prefix_length > 0) {
    frames.push_back({prefix_end, prefix_length > 1});
    outstanding_.erase(outstanding_.begin(), outstanding_.upper_bound(prefix_end));
    finished_.erase(finished_.begin(), finished_.upper_bound(prefix_end));
  }
  for (auto tag : finished_) {
    frames.push_back({tag, false});
    outstanding_.erase(tag);
  }
  finished_.clear();
  return frames;
}

}  // namespace warren::consumer
