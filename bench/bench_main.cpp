// warren-bench: Warren's benchmark suite (issue 6; bench/RESULTS.md keeps dated runs).
//
//   warren-bench [--size full|tiny] [--only floor,drain,submit,latency,retry,scale]
//                [--json FILE] [--log-level info] [--env NAME=VALUE ...] [--latency-rate N]
//
// Runs the scenarios of scenarios.h in order against the private servers of scripts/bench.sh
// (found through the WARREN_TEST_* variables, like the tests), prints a markdown table to
// stdout and writes the same as JSON. Exits non-zero only when a scenario could not run (a
// failed request, jobs that never finished): goals are reported, not enforced, because this
// is a benchmark, not a timed test. Progress goes to stderr.
#include <sys/utsname.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <set>
#include <sstream>

#include "bench_result.h"
#include "scenarios.h"
#include "support/test_stack.h"

namespace {

using namespace warren::bench;

struct Options {
  std::string size = "full";
  std::set<std::string> only;  // empty: every scenario
  std::string json_path = "bench-results.json";
  std::string log_level = "info";
  std::map<std::string, std::string> extra_env;
  int latency_rate = 0;  // 0: the size's own (1,000 jobs/s at full size)
};

const std::set<std::string> kScenarioNames = {"floor", "drain",  "submit", "latency",
                                              "retry", "memory", "scale"};

[[noreturn]] void usage(const std::string& problem) {
  std::cerr << "warren-bench: " << problem
            << "\nusage: warren-bench [--size full|tiny] [--only a,b,...] [--json FILE]"
               " [--log-level LEVEL] [--env NAME=VALUE]... [--latency-rate N]\nscenarios: floor "
               "drain submit "
               "latency retry memory scale (memory needs drain and submit)\n";
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--size") {
      options.size = value();
      if (options.size != "full" && options.size != "tiny") usage("--size is full or tiny");
    } else if (arg == "--only") {
      std::stringstream list(value());
      for (std::string name; std::getline(list, name, ',');) {
        if (!kScenarioNames.contains(name)) usage("no scenario called " + name);
        options.only.insert(name);
      }
    } else if (arg == "--json") {
      options.json_path = value();
    } else if (arg == "--log-level") {
      options.log_level = value();
    } else if (arg == "--latency-rate") {
      options.latency_rate = std::stoi(value());
      if (options.latency_rate < 1) usage("--latency-rate is a number of jobs per second");
    } else if (arg == "--env") {
      const auto setting = value();
      const auto equals = setting.find('=');
      if (equals == std::string::npos) usage("--env takes NAME=VALUE");
      options.extra_env[setting.substr(0, equals)] = setting.substr(equals + 1);
    } else {
      usage("unknown argument " + arg);
    }
  }
  return options;
}

std::string utc_now() {
  char buffer[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return buffer;
}

std::string cpu_description() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string model = "unknown CPU";
  int count = 0;
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      ++count;
    }
  }
  return std::to_string(count) + " x " + model;
}

RunInfo run_info(const std::string& size) {
  utsname name{};
  uname(&name);
  const char* commit = std::getenv("WARREN_BENCH_COMMIT");
  return {utc_now(), std::string(name.nodename) + " (" + name.sysname + " " + name.release + ")",
          cpu_description(), commit ? commit : "unknown", size};
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = parse_options(argc, argv);
  auto wanted = [&](const std::string& name) {
    return options.only.empty() || options.only.contains(name);
  };
  BenchContext context;
  context.sizes = options.size == "tiny" ? Sizes::tiny() : Sizes::full();
  if (options.latency_rate > 0) context.sizes.latency_rate = options.latency_rate;
  context.log_level = options.log_level;
  context.extra_env = options.extra_env;
  try {
    context.amqp_url = warren::test::test_env("WARREN_TEST_AMQP_URL");
    context.log_dir = warren::test::test_env("WARREN_TEST_STACK_DIR") + "/bench-logs";
    std::filesystem::create_directories(context.log_dir);
  } catch (const std::exception& e) {
    std::cerr << "warren-bench: " << e.what() << " (run it through scripts/bench.sh)\n";
    return 2;
  }
  const auto run = run_info(options.size);
  std::vector<ScenarioResult> results;
  int failures = 0;
  // Runs one scenario, prints its rows as soon as it is done, and keeps going after a failure.
  auto attempt = [&](const std::string& name, const std::function<void()>& body) {
    if (!wanted(name)) return;
    std::cerr << "==== " << name << "\n";
    try {
      body();
    } catch (const std::exception& e) {
      std::cerr << "warren-bench: scenario " << name << " failed: " << e.what() << "\n";
      ++failures;
    }
  };
  auto report_last = [&] { std::cerr << markdown_report(run, {results.back()}) << "\n"; };

  double floor_rate = 0;
  attempt("floor", [&] {
    results.push_back(run_floor(context));
    floor_rate = results.back().value("msg/s (publish -> last ack)");
    report_last();
  });
  if (floor_rate == 0 && (wanted("drain") || wanted("scale"))) {
    std::cerr << "warren-bench: drain and scale are ratios to the floor; running the floor too\n";
    results.push_back(run_floor(context));
    floor_rate = results.back().value("msg/s (publish -> last ack)");
  }
  std::optional<DrainRun> drain;
  std::optional<SubmitRun> submit;
  attempt("drain", [&] {
    drain = run_drain(context, context.sizes.drain_consumers, floor_rate);
    results.push_back(drain->result);
    report_last();
  });
  attempt("submit", [&] {
    submit = run_submit(context);
    results.push_back(submit->result);
    report_last();
  });
  attempt("latency", [&] {
    results.push_back(run_latency(context));
    report_last();
  });
  attempt("retry", [&] {
    results.push_back(run_retry(context));
    report_last();
  });
  attempt("memory", [&] {
    if (!drain || !submit) throw std::runtime_error("memory reads the runs of drain and submit");
    results.push_back(memory_result(*drain, *submit));
  });
  attempt("scale", [&] {
    std::vector<DrainRun> drains;
    for (int consumers : context.sizes.scale_consumers) {
      std::cerr << "  drain with " << consumers << " consumer(s)\n";
      drains.push_back(run_drain(context, consumers, floor_rate));
    }
    results.push_back(scale_result(drains));
    report_last();
  });

  std::cout << markdown_report(run, results);
  std::ofstream(options.json_path) << json_report(run, results).dump(2) << "\n";
  std::cerr << "warren-bench: JSON in " << options.json_path << ", Warren logs in "
            << context.log_dir << "\n";
  if (failures > 0) {
    std::cerr << "warren-bench: " << failures << " scenario(s) failed\n";
    return 1;
  }
  return 0;
}
