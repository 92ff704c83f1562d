// See job_bodies.h.
#include "job_bodies.h"

#include <algorithm>

namespace warren::bench {

std::vector<std::string> single_job_bodies(int count, const std::string& job_json) {
  return std::vector<std::string>(static_cast<std::size_t>(count), job_json);
}

std::vector<std::string> batch_bodies(int count, int per_batch, const std::string& job_json) {
  std::vector<std::string> bodies;
  for (int done = 0; done < count; done += per_batch) {
    const int size = std::min(per_batch, count - done);
    std::string body = R"({"jobs":[)";
    for (int i = 0; i < size; ++i) body += (i > 0 ? "," : "") + job_json;
    body += "]}";
    bodies.push_back(std::move(body));
  }
  return bodies;
}

}  // namespace warren::bench
