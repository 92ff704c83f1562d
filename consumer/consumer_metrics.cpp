// See consumer_metrics.h.
#include "consumer/consumer_metrics.h"

namespace warren::consumer {
namespace {

// Attempts run from milliseconds to hours; queue waits likewise.
std::vector<double> long_buckets_seconds() {
  return {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600};
}

}  // namespace

ConsumerMetrics::ConsumerMetrics(metrics::MetricsRegistry& r)
    : attempts(r.register_counter("warren_attempts_total",
                                  "Attempts finished, by queue, job type and outcome",
                                  {"queue", "type", "outcome"})),
      attempt_duration(r.register_histogram("warren_attempt_duration_seconds",
                                            "Time from claim to outcome of an attempt",
                                            long_buckets_seconds(), {"queue"})),
      queue_wait(r.register_histogram(
          "warren_queue_wait_seconds",
          "Time from when a job was due (created, scheduled, retry time) until an attempt started",
          long_buckets_seconds(), {"queue"})),
      in_flight(r.register_gauge("warren_jobs_in_flight", "Handlers running now")),
      stuck_handlers(r.register_gauge(
          "warren_stuck_handlers",
          "Handlers still running after their attempt ended (timeout, cancel) and a grace period")),
      retries_scheduled(r.register_counter("warren_retries_scheduled_total",
                                           "Failed attempts whose retry was scheduled, by queue",
                                           {"queue"})),
      dead_letters(r.register_counter("warren_dead_letters_total",
                                      "Jobs dead-lettered by this consumer, by reason",
                                      {"reason"})),
      duplicate_deliveries(r.register_counter(
          "warren_duplicate_deliveries_total",
          "Deliveries acknowledged and dropped because their job did not need them, by reason",
          {"reason"})),
      poison_messages(r.register_counter("warren_poison_messages_total",
                                         "Messages rejected without requeue as undecodable")),
      reconnects(r.register_counter("warren_reconnects_total",
                                    "Connections re-established after a loss, by dependency",
                                    {"dependency"})),
      db_batch_size(r.register_histogram("warren_db_batch_size",
                                         "Claims or outcomes written per database commit",
                                         metrics::batch_size_buckets(), {"kind"})),
      db_commit_seconds(r.register_histogram("warren_db_commit_seconds",
                                             "Latency of one group commit of claims and outcomes",
                                             metrics::default_latency_buckets_seconds())),
      acks(r.register_counter("warren_ack_frames_total",
                              "Acknowledgement frames sent, by kind (multiple covers many)",
                              {"kind"})),
      follow_up_publish_failures(r.register_counter(
          "warren_follow_up_publish_failures_total",
          "Retry or dead-letter publishes the broker did not confirm", {"kind"})),
      dead_letters_recorded(r.register_counter(
          "warren_dead_letters_recorded_total",
          "Messages of the dead-letter queue recorded in Postgres by this process, by reason",
          {"reason"})),
      dead_letter_duplicates(r.register_counter(
          "warren_dead_letter_duplicates_total",
          "Messages of the dead-letter queue already recorded (a consumer's own, a redelivery)")),
      dead_letter_jobs_failed(r.register_counter(
          "warren_dead_letter_jobs_failed_total",
          "Jobs marked failed because the broker dead-lettered their message (delivery limit)")),
      dead_letter_errors(r.register_counter(
          "warren_dead_letter_recorder_errors_total",
          "Dead-letter recorder failures, by kind (broker, database, refused)", {"kind"})) {}

}  // namespace warren::consumer
