// AckTracker: the fewest ack frames that never ack an unfinished delivery.
#include "consumer/ack_tracker.h"

#include <gtest/gtest.h>

namespace warren::consumer {
namespace {

AckTracker with_received(std::initializer_list<std::uint64_t> tags) {
  AckTracker tracker;
  for (auto tag : tags) tracker.received(tag);
  return tracker;
}

TEST(AckTracker, NothingFinishedSendsNothing) {
  auto tracker = with_received({1, 2, 3});
  EXPECT_TRUE(tracker.flush().empty());
  EXPECT_EQ(tracker.outstanding(), 3u);
}

TEST(AckTracker, SingleFinishedHeadIsAPlainAck) {
  auto tracker = with_received({1, 2});
  tracker.finished(1);
  EXPECT_EQ(tracker.flush(), (std::vector<AckFrame>{{1, false}}));
  EXPECT_EQ(tracker.outstanding(), 1u);
}

TEST(AckTracker, FinishedPrefixIsOneMultipleAck) {
  auto tracker = with_received({1, 2, 3, 4});
  tracker.finished(3);
  tracker.finished(1);
  tracker.finished(2);
  EXPECT_EQ(tracker.flush(), (std::vector<AckFrame>{{3, true}}));
  EXPECT_EQ(tracker.outstanding(), 1u);
}

TEST(AckTracker, FinishedAfterAGapIsAckedAloneNeverCoveringTheGap) {
  auto tracker = with_received({1, 2, 3, 4, 5});
  tracker.finished(1);
  tracker.finished(2);
  tracker.finished(4);
  tracker.finished(5);
  // 3 is still running: 4 and 5 must not be covered by a multiple ack up to 5.
  EXPECT_EQ(tracker.flush(), (std::vector<AckFrame>{{2, true}, {4, false}, {5, false}}));
  tracker.finished(3);
  EXPECT_EQ(tracker.flush(), (std::vector<AckFrame>{{3, false}}));
  EXPECT_EQ(tracker.outstanding(), 0u);
}

TEST(AckTracker, NackedTagsLeaveThePrefix) {
  auto tracker = with_received({1, 2, 3});
  tracker.settled_otherwise(1);  // nacked: the prefix now starts at 2
  tracker.finished(2);
  tracker.finished(3);
  EXPECT_EQ(tracker.flush(), (std::vector<AckFrame>{{3, true}}));
}

TEST(AckTracker, UnknownOrRepeatedTagsAreIgnored) {
  auto tracker = with_received({5});
  tracker.finished(9);
  EXPECT_TRUE(tracker.flush().empty());
  tracker.finished(5);
  tracker.finished(5);
  EXPECT_EQ(tracker.flush(), (std::vector<AckFrame>{{5, false}}));
  EXPECT_TRUE(tracker.flush().empty());
}

}  // namespace
}  // namespace warren::consumer
