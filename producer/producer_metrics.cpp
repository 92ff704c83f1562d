// See producer_metrics.h.
#include "producer/producer_metrics.h"

namespace warren {

ProducerMetrics::ProducerMetrics(metrics::MetricsRegistry& r)
    : http_requests(r.register_counter("warren_http_requests_total",
                                       "HTTP requests answered, by route and status code",
                                       {"route", "status"})),
      http_duration(r.register_histogram("warren_http_request_duration_seconds",
                                         "HTTP request latency by route",
                                         metrics::default_latency_buckets_seconds(), {"route"})),
      jobs_submitted(r.register_counter("warren_jobs_submitted_total",
                                        "Jobs accepted (committed), by queue and type",
                                        {"queue", "type"})),
      idempotent_replays(r.register_counter("warren_idempotent_replays_total",
                                            "Submissions answered with an existing job")),
      submit_batch_jobs(r.register_histogram("warren_submit_batch_jobs",
                                             "Jobs written per group commit",
                                             metrics::batch_size_buckets())),
      submit_commit_seconds(r.register_histogram("warren_submit_commit_seconds",
                                                 "Time a submission waited for its commit",
                                                 metrics::default_latency_buckets_seconds())),
      outbox_published(r.register_counter("warren_outbox_published_total",
                                          "Messages published and confirmed by the broker")),
      outbox_publish_failures(r.register_counter("warren_outbox_publish_failures_total",
                                                 "Outbox publishes that must be retried, by reason",
                                                 {"reason"})),
      outbox_batch_messages(r.register_histogram("warren_outbox_batch_messages",
                                                 "Messages per confirm wait",
                                                 metrics::batch_size_buckets())),
      retention_deleted(r.register_counter("warren_retention_deleted_total",
                                           "Rows removed by retention, by kind", {"kind"})),
      dead_letter_actions(r.register_counter(
          "warren_dead_letter_actions_total",
          "Dead letters requeued or discarded, by action and whether one by one or in bulk",
          {"action", "via"})),
      bulk_item_failures(r.register_counter(
          "warren_bulk_operation_item_failures_total",
          "Items of bulk operations that could not be done (already handled, refused), by kind",
          {"kind"})) {}

}  // namespace warren
