// The verbs of warrenctl (RUNNING.md "warrenctl"), one function each. They return the process
// exit code: 0 success, 1 the operation failed; bad usage throws UsageError (exit 2).
#pragma once

#include "shared/config.h"
#include "tools/warrenctl/command_args.h"

namespace warren::ctl {

int run_migrate(const Config& config, const std::vector<std::string>& words);
int run_topology(const Config& config, const std::vector<std::string>& words);
int run_submit(const Config& config, const std::vector<std::string>& words);
int run_jobs(const Config& config, const std::vector<std::string>& words);
int run_dlq(const Config& config, const std::vector<std::string>& words);

}  // namespace warren::ctl
