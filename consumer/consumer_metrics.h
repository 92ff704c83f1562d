// The consumer's Prometheus metrics (issue 3 lists them), registered once at start. Label
// values are bounded: queues come from WARREN_QUEUES, outcomes and reasons are fixed sets, and
// job types are capped by the registry (past the cap they fold into "_other").
#pragma once

#include "shared/metrics/metrics_registry.h"

namespace warren::consumer {

struct ConsumerMetrics {
  explicit ConsumerMetrics(metrics::MetricsRegistry& registry);

  metrics::CounterFamily& attempts;                    // queue, type, outcome
  metrics::HistogramFamily& attempt_duration;          // queue
  metrics::HistogramFamily& queue_wait;                // queue
  metrics::GaugeFamily& in_flight;                     // (none): handlers running now
  metrics::GaugeFamily& stuck_handlers;                // (none): MESSAGING.md warren_stuck_handlers
  metrics::CounterFamily& retries_scheduled;           // queue
  metrics::CounterFamily& dead_letters;                // reason
  metrics::CounterFamily& duplicate_deliveries;        // reason: terminal, running, stale, ...
  metrics::CounterFamily& poison_messages;             // (none)
  metrics::CounterFamily& reconnects;                  // dependency: broker, database
  metrics::HistogramFamily& db_batch_size;             // kind: claims, outcomes
  metrics::HistogramFamily& db_commit_seconds;         // (none)
  metrics::CounterFamily& acks;                        // kind: single, multiple, nack, reject
  metrics::CounterFamily& follow_up_publish_failures;  // kind: retry, dead_letter
  // The dead-letter recorder (dead_letter_recorder.h).
  metrics::CounterFamily& dead_letters_recorded;    // reason
  metrics::CounterFamily& dead_letter_duplicates;   // (none): already in the table
  metrics::CounterFamily& dead_letter_jobs_failed;  // (none): jobs failed by the broker's verdict
  metrics::CounterFamily& dead_letter_errors;       // kind: broker, database, refused
};

}  // namespace warren::consumer
