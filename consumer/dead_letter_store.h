// The SQL of the dead-letter recorder: writes a batch of decoded dead letters in one
// transaction, and fails the jobs whose message the broker gave up on.
//
// Everything is idempotent, because the recorder acks only after the commit and a crash in
// between delivers the batch again: rows are inserted ON CONFLICT DO NOTHING on their message
// key (and id), and a job is failed only by the insert of its dead letter, and only while it is
// still waiting or running.
//
// Locking: the jobs to fail are locked in id order, as the consumer's attempt store locks them,
// so a recorder batch and a consumer batch touching the same jobs cannot deadlock.
#pragma once

#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "consumer/dead_letter_decoder.h"

namespace warren::consumer {

struct DeadLetterWrite {
  std::vector<bool> recorded;  // per row: a new row (false: already recorded, by the consumer
                               // that failed the job or by an earlier delivery)
  int jobs_failed = 0;         // jobs this batch moved to `failed`
};

// `rows` may be adjusted: a first delivery whose content key is taken gets a distinct key
// (dead_letter_decoder.h, distinct_message_key).
DeadLetterWrite write_dead_letters(pqxx::work& tx, std::vector<DeadLetterRow>& rows,
                                   const std::string& now);

// The last resort for a row the database refuses even alone (a header or text it cannot store):
// keep what cannot fail, the raw bytes, the reason and the routing; drop the headers and the
// payload (the error message says so).
DeadLetterRow minimal_dead_letter(const DeadLetterRow& row, const std::string& body,
                                  const std::string& refusal);

}  // namespace warren::consumer
