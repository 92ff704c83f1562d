// Job handlers by type name, registered once at start before the consumer runs; read-only
// afterwards, so worker threads look handlers up without locking.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "consumer/job_handler.h"

namespace warren::consumer {

class HandlerRegistry {
 public:
  // Throws std::invalid_argument for a malformed type name or one registered twice.
  void add(const std::string& type, JobHandler handler);

  // nullptr: no handler for this type (the job fails permanently as `unknown_type`).
  const JobHandler* find(const std::string& type) const;

  std::vector<std::string> types() const;

 private:
  std::map<std::string, JobHandler> handlers_;
};

// noop, sleep and fail of MESSAGING.md "Handlers", which every deployment has.
void add_builtin_handlers(HandlerRegistry& registry);

}  // namespace warren::consumer
