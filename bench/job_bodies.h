// Request bodies for the HTTP scenarios, built before any clock starts.
#pragma once

#include <string>
#include <vector>

namespace warren::bench {

// `count` single-job bodies for POST /v1/jobs.
std::vector<std::string> single_job_bodies(int count, const std::string& job_json);
// POST /v1/jobs/batch bodies of up to `per_batch` jobs each, `count` jobs in all.
std::vector<std::string> batch_bodies(int count, int per_batch, const std::string& job_json);

inline const std::string kNoopJob = R"({"type":"noop","payload":{}})";

}  // namespace warren::bench
