// The producer process put together: configuration in, then the pieces in the order they
// depend on each other (schema, metrics, batcher, relay, HTTP), and a clean shutdown on
// SIGTERM/SIGINT: stop accepting connections, finish requests in flight, drain the batcher,
// stop the relay (the outbox keeps whatever it had not published), exit 0.
#pragma once

#include "shared/config.h"

namespace warren {

// Runs until SIGTERM/SIGINT; returns the process exit code.
int run_producer(const Config& config);

}  // namespace warren
