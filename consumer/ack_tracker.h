// Which acknowledgements to send, and how few frames they can take.
//
// A consumer finishes deliveries out of order (a 10 ms job overtakes a 10 s one). AMQP's
// `multiple` flag acks every delivery up to a tag at once, which is only correct when every
// outstanding delivery up to that tag is finished. The tracker keeps the outstanding tags of one
// channel and, at each flush, acks the finished prefix with one `multiple` frame and the other
// finished tags one by one (waiting for the prefix would hold the prefetch window hostage to
// the slowest job).
//
// Pure logic, no I/O: the broker session sends what flush() returns. One tracker per channel
// (tags restart at 1 on a new connection).
#pragma once

#include <cstdint>
#include <set>
#include <vector>

namespace warren::consumer {

struct AckFrame {
  std::uint64_t delivery_tag = 0;
  bool multiple = false;

  friend bool operator==(const AckFrame&, const AckFrame&) = default;
};

class AckTracker {
 public:
  // A delivery arrived: it must be settled (acked, nacked or rejected) some day.
  void received(std::uint64_t tag);
  // The delivery may be acked; sent at the next flush().
  void finished(std::uint64_t tag);
  // The delivery was nacked or rejected by other means: no longer outstanding.
  void settled_otherwise(std::uint64_t tag);

  // The frames that ack every finished delivery, fewest possible given the rule above.
  std::vector<AckFrame> flush();

  std::size_t outstanding() const { return outstanding_.size(); }

 private:
  std::set<std::uint64_t> outstanding_;  // received, not yet settled
  std::set<std::uint64_t> finished_;     // subset of outstanding_ to ack at the next flush
};

}  // namespace warren::consumer
