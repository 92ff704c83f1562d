// See bench_context.h. The full sizes are issue 6's; the tiny ones keep every scenario's shape
// (batches of 1000 become one batch of 500, 64 connections stay 64) at a fraction of the work.
#include "bench_context.h"

namespace warren::bench {

Sizes Sizes::full() {
  return {.floor_messages = 20000,
          .drain_jobs = 20000,
          .drain_consumers = 2,
          .submit_jobs = 20000,
          .submit_connections = 64,
          .latency_rate = 1000,
          .latency_seconds = 30,
          .retry_jobs = 10000,
          .scale_consumers = {1, 2, 4}};
}

Sizes Sizes::tiny() {
  return {.floor_messages = 500,
          .drain_jobs = 500,
          .drain_consumers = 2,
          .submit_jobs = 500,
          .submit_connections = 64,
          .latency_rate = 100,
          .latency_seconds = 3,
          .retry_jobs = 500,
          .scale_consumers = {1, 2}};
}

}  // namespace warren::bench
