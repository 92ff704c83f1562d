// Submitting jobs and waiting for them, for the consumer's integration tests.
#pragma once

#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace warren::test {

// POST /v1/jobs/batch in chunks of 1000; returns the ids in order. Fails the test (throws) on
// anything but 202.
std::vector<std::string> submit_jobs(httplib::Client& api, const std::vector<nlohmann::json>& jobs);

std::string submit_job(httplib::Client& api, const nlohmann::json& job);

}  // namespace warren::test
