// The producer's Prometheus metrics, registered once at start. Label values are bounded: routes
// are the patterns of the route table (not raw paths), queues come from WARREN_QUEUES, and job
// types are capped by the registry (past the cap they fold into "_other").
#pragma once

#include "shared/metrics/metrics_registry.h"

namespace warren {

struct ProducerMetrics {
  explicit ProducerMetrics(metrics::MetricsRegistry& registry);

  metrics::CounterFamily& http_requests;        // route, status
  metrics::HistogramFamily& http_duration;      // route
  metrics::CounterFamily& jobs_submitted;       // queue, type
  metrics::CounterFamily& idempotent_replays;   // (none)
  metrics::HistogramFamily& submit_batch_jobs;  // jobs per commit
  metrics::HistogramFamily& submit_commit_seconds;
  metrics::CounterFamily& outbox_published;         // (none)
  metrics::CounterFamily& outbox_publish_failures;  // reason: broker_down, returned, nacked
  metrics::HistogramFamily& outbox_batch_messages;
  metrics::CounterFamily& retention_deleted;    // what
  metrics::CounterFamily& dead_letter_actions;  // action (requeued, discarded), via (single, bulk)
  metrics::CounterFamily& bulk_item_failures;   // kind (requeue, discard)
};

}  // namespace warren
