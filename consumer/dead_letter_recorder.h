// The dead-letter recorder: drains `warren.dead-letters` into the `dead_letters` table, so
// that every message that left the normal flow can be listed, inspected and replayed
// (MESSAGING.md guarantee 5, API.md "Dead letters").
//
// It runs inside every consumer process (WARREN_DEAD_LETTER_RECORDER=1, the default), and the
// queue's single-active-consumer flag makes exactly one replica at a time receive messages; the
// others wait as standbys and take over when it goes away. So no separate deployment exists to
// be forgotten, and any number of replicas is safe.
//
// A thread of its own with its own broker and database connections: dead letters are rare and
// bursty, and the recorder must not share fate or latency with job processing (a stuck insert
// here never delays an ack there). Each pass takes what has arrived (up to kMaxBatch), writes
// it in one transaction (dead_letter_store.h), then acks it with one `multiple` ack. Ack after
// commit: a crash in between redelivers the batch, and the store's message keys make that a
// no-op. A message the database refuses is retried alone and, failing that, recorded in a
// minimal form (raw bytes, reason, routing) so that it can never wedge the queue.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <thread>
#include <vector>

#include "consumer/dead_letter_decoder.h"
#include "consumer/dead_letter_store.h"
#include "shared/amqp/message.h"

namespace warren {
struct Config;
namespace amqp {
class AmqpConnection;
}
}  // namespace warren

namespace warren::consumer {

struct ConsumerMetrics;

class DeadLetterRecorder {
 public:
  DeadLetterRecorder(const Config& config, ConsumerMetrics& metrics);
  ~DeadLetterRecorder();
  DeadLetterRecorder(const DeadLetterRecorder&) = delete;
  DeadLetterRecorder& operator=(const DeadLetterRecorder&) = delete;

  void start();
  // Stops taking messages; a batch being written is committed and acked first when the
  // database allows it, else left unacked for the broker to hand to the next recorder.
  void stop();

 private:
  enum class WriteStatus { kWritten, kFailed, kRefused };

  void run();
  // One broker connection's life; returns on stop, throws AmqpError when the broker goes.
  void serve(amqp::AmqpConnection& broker);
  std::vector<amqp::Delivery> collect(amqp::AmqpConnection& broker);
  // Writes the batch, waiting through database outages (answering broker heartbeats meanwhile).
  // False when asked to stop before it could commit.
  bool record(const std::vector<amqp::Delivery>& batch, amqp::AmqpConnection& broker);
  WriteStatus write(std::vector<DeadLetterRow>& rows);
  bool write_one_by_one(std::vector<DeadLetterRow>& rows, const std::vector<amqp::Delivery>& batch);
  void count(const std::vector<DeadLetterRow>& rows, const DeadLetterWrite& written);
  // Sleeps up to `delay`; false when stopping.
  bool pause(std::chrono::milliseconds delay);
  bool stopping();

  const Config& config_;
  ConsumerMetrics& metrics_;
  std::unique_ptr<pqxx::connection> database_;  // the recorder thread's alone
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace warren::consumer
