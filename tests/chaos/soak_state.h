// Reads what the chaos soak checks (invariants.h) from where it lives: Postgres (jobs, attempts,
// dead letters, outbox), the broker (messages left in every queue of the soak's topology) and
// the consumers' side-effect ledger files.
#pragma once

#include <string>
#include <vector>

#include "chaos/invariants.h"

namespace warren::chaos {

struct SoakProgress {
  std::int64_t jobs = 0;
  std::int64_t unfinished = 0;  // not succeeded, failed or cancelled
  std::int64_t outbox_rows = 0;
  std::int64_t poison_recorded = 0;
  std::int64_t queued_messages = 0;  // messages in every queue of the soak (any state)
};

class SoakStateReader {
 public:
  SoakStateReader(std::string database_url, std::string management_url, std::string prefix,
                  std::vector<std::string> queues, std::string ledger_dir);

  // Cheap counts, polled while waiting for the cluster to go quiet. Throws while a server is down.
  SoakProgress progress() const;
  // Everything, for the invariants (after the cluster stopped).
  SoakState read() const;

 private:
  std::map<std::string, std::int64_t> queue_messages() const;

  std::string database_url_, management_url_, prefix_;
  std::vector<std::string> queues_;
  std::string ledger_dir_;
};

}  // namespace warren::chaos
