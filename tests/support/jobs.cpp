// See jobs.h.
#include "support/jobs.h"

#include <stdexcept>

#include "support/test_stack.h"

namespace warren::test {

std::vector<std::string> submit_jobs(httplib::Client& api,
                                     const std::vector<nlohmann::json>& jobs) {
  constexpr std::size_t kChunk = 1000;
  std::vector<std::string> ids;
  for (std::size_t start = 0; start < jobs.size(); start += kChunk) {
    nlohmann::json body = {{"jobs", nlohmann::json::array()}};
    for (std::size_t i = start; i < std::min(jobs.size(), start + kChunk); ++i) {
      body["jobs"].push_back(jobs[i]);
    }
    auto response = post_json(api, "/v1/jobs/batch", body);
    if (!response || response->status != 202) {
      throw std::runtime_error("batch submit failed: " +
                               (response ? std::to_string(response->status) + " " + response->body
                                         : std::string("no answer")));
    }
    const auto answer = nlohmann::json::parse(response->body);
    for (const auto& job : answer["jobs"]) {
      ids.push_back(job["id"].get<std::string>());
    }
  }
  return ids;
}

std::string submit_job(httplib::Client& api, const nlohmann::json& job) {
  auto response = post_json(api, "/v1/jobs", job);
  if (!response || response->status != 202) {
    throw std::runtime_error("submit failed: " +
                             (response ? std::to_string(response->status) + " " + response->body
                                       : std::string("no answer")));
  }
  return nlohmann::json::parse(response->body)["id"].get<std::string>();
}

}  // namespace warren::test
