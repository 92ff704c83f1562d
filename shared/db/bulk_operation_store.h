// Bulk requeue and discard as durable operations (API.md "POST /v1/dead-letters/requeue").
//
// Creating an operation freezes what it will touch: the ids of the dead letters that matched at
// that moment go into bulk_operation_items, in the same transaction as the operation row. New
// failures arriving during the run are therefore never swept in, and a producer that restarts
// finds the operation and its pending items exactly where they were.
//
// Running it is a sequence of short transactions, each taking the next chunk of pending items
// (FOR UPDATE SKIP LOCKED), applying the single requeue or discard of dead_letter_store.h to
// each inside a savepoint (one bad item fails alone), marking the items and adding to the
// operation's counters. No transaction ever spans thousands of rows, progress is visible after
// every chunk, and an item is done at most once: its state changes in the transaction that
// requeued it. The pacing between chunks is the runner's (producer/bulk_operation_runner.h).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "shared/db/dead_letter_store.h"

namespace warren {
struct Config;
}

namespace warren::db {

// API.md: "limit (default and max 10000)".
inline constexpr int kMaxBulkItems = 10000;

struct BulkRequest {
  std::string kind;  // requeue, discard
  // Exactly one of: explicit ids, or a filter (state must be `dead`).
  std::vector<std::string> ids;
  std::optional<DeadLetterFilter> filter;
  std::string actor;
  std::string reason;
  std::optional<int> max_attempts;  // requeue: the fresh budget of every job
};

// The filter of a bulk operation, from the list's filter parameters (`limit` included or not:
// it defaults to kMaxBulkItems). The rules both the API and warrenctl apply: at least one filter
// (an empty one would sweep in everything by accident; `state=dead` says so on purpose), and
// only dead letters in state `dead`. Throws ProblemError (400).
DeadLetterFilter parse_bulk_filter(std::vector<std::pair<std::string, std::string>> params,
                                   const std::string& kind);

struct CreatedOperation {
  std::string id;
  int matched = 0;
  // Ids given explicitly that are not dead letters in state `dead` (unknown, or already
  // requeued or discarded): not part of the operation, reported back to the caller.
  std::vector<std::string> not_matched;
};

CreatedOperation create_bulk_operation(pqxx::work& tx, const BulkRequest& request);

// GET /v1/operations/{id}: the operation with its progress and the first failures; nullopt
// when there is none.
std::optional<nlohmann::json> find_operation(pqxx::transaction_base& tx, const std::string& id);

// GET /v1/operations: the most recent operations, newest first.
nlohmann::json list_operations(pqxx::transaction_base& tx, int limit);

struct RunnableOperation {
  std::string id;
  std::string kind;
};

// The oldest operation still running, if any.
std::optional<RunnableOperation> next_running_operation(pqxx::transaction_base& tx);

struct ChunkResult {
  int done = 0;
  int failed = 0;
  bool finished = false;  // no pending item left: the operation is now `done`
};

// Applies the operation to up to `max_items` pending items (see above) in the caller's
// transaction, which the caller commits.
ChunkResult run_operation_chunk(pqxx::work& tx, const Config& config,
                                const std::string& operation_id, int max_items);

// The runner lock (producer/bulk_operation_runner.h): a session-level advisory lock, one per
// database. Takes it on `connection` if it is free.
bool try_take_runner_lock(pqxx::connection& connection);
// Whether a producer's runner holds the lock now (taken and given back at once to find out).
bool runner_is_active(pqxx::connection& connection);

// Marks a running operation failed with the error that stopped it (its pending items stay
// pending, the audit of the done ones stays).
void fail_operation(pqxx::work& tx, const std::string& operation_id, const std::string& error);

}  // namespace warren::db
