// Every SQL statement an operator's dead-letter actions need (API.md "Dead letters"): list with
// filters and keyset pagination, failure groups, one dead letter with its job's attempt log,
// requeue and discard with their audit rows. Used by the producer's routes and by
// `warrenctl dlq`, so both show and do exactly the same thing. (The rows themselves are written
// by the consumer: consumer/attempt_store.cpp and consumer/dead_letter_store.cpp.)
//
// Requeue and discard change one dead letter in the caller's transaction, so a bulk operation
// (bulk_operation_store.h) runs the very same code per item. Neither deletes anything: the
// dead letter changes state and gains an audit row naming who, when, why and, for a requeue,
// which attempt numbers the job gets next.
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <utility>
#include <vector>

namespace warren {
struct Config;
}

namespace warren::db {

struct DeadLetterFilter {
  std::optional<std::string> type, queue, reason, error_type;
  std::optional<std::string> q;  // substring of the error message, case-insensitive
  std::optional<std::chrono::system_clock::time_point> since, until;
  std::string state = "dead";  // dead, requeued, discarded, all
  int limit = 50;
  std::optional<std::string> cursor;  // opaque, from a previous page

  // The filter as JSON (bulk_operations.filter records what an operation matched on).
  nlohmann::json to_json() const;
};

// Query parameters of GET /v1/dead-letters (or the keys of a bulk request's body); throws
// ProblemError (400) on anything invalid. `max_limit` bounds `limit`.
DeadLetterFilter parse_dead_letter_filter(
    const std::vector<std::pair<std::string, std::string>>& params, int max_limit = 500);

// {"dead_letters": [...], "next_cursor": ...}, newest first, keyset-paginated on
// (dead_lettered_at, id).
nlohmann::json list_dead_letters(pqxx::transaction_base& tx, const DeadLetterFilter& filter);

// {"groups": [...]}: dead letters in state `dead` grouped by type, queue, reason and error
// type, largest first.
nlohmann::json summarize_dead_letters(pqxx::transaction_base& tx);

// One dead letter with its audit trail, and its job's attempts as "attempts_log" when it has a
// job; nullopt when there is no such dead letter.
std::optional<nlohmann::json> find_dead_letter(pqxx::transaction_base& tx, const std::string& id);

// The ids of dead letters matching a filter, oldest first (the order a replay should follow),
// at most filter.limit of them. For bulk operations.
std::string matching_dead_letters_sql(const DeadLetterFilter& filter, nlohmann::json& args);

struct DeadLetterAction {
  std::string actor;                        // the token's name (API.md "requeued_by")
  std::string reason;                       // why, free text ("" = none given)
  std::optional<std::string> operation_id;  // set when part of a bulk operation
};

struct RequeueOptions {
  // A fresh attempt budget: the job may make this many more attempts. Default: the budget it
  // had (its max_attempts as submitted, or as the last requeue set it).
  std::optional<int> max_attempts;
  std::optional<nlohmann::json> payload;  // replaces the job's payload (edit and retry)
};

enum class ActionResult { kDone, kNotFound, kConflict };

struct ActionOutcome {
  ActionResult result = ActionResult::kDone;
  std::string detail;     // kConflict: why, for the problem's detail
  std::string job_id;     // kDone requeue: the job that will run (maybe a new one)
  int first_attempt = 0;  // kDone requeue: the attempt number it runs next
};

// POST /v1/dead-letters/{id}/requeue. A failed job goes back to `queued` on its queue with its
// attempt numbering continuing; a poison message without a job becomes a new job when its body
// is a valid job message. The relay publishes it (an outbox row in this transaction).
ActionOutcome requeue_dead_letter(pqxx::transaction_base& tx, const Config& config,
                                  const std::string& id, const DeadLetterAction& action,
                                  const RequeueOptions& options);

// POST /v1/dead-letters/{id}/discard: the dead letter is set aside (kept for the audit trail
// until retention removes it); its job and the job's attempt log are untouched.
ActionOutcome discard_dead_letter(pqxx::transaction_base& tx, const std::string& id,
                                  const DeadLetterAction& action);

}  // namespace warren::db
