// warren-chaos: the chaos soak (issue 5). Runs a mixed workload through 2 producers and 3
// consumers while the fault injector kills, stops, pauses and restarts processes and servers;
// then waits for the cluster to go quiet, stops it, and checks MESSAGING.md's guarantees
// (invariants.h). Prints a summary table and exits 1 if any invariant was violated.
//
//   warren-chaos [--duration 150s] [--seed N] [--rate JOBS_PER_S] [--quiet-timeout 240s]
//
// It needs the private servers of scripts/test.sh (the WARREN_TEST_* variables) and restarts
// them: run it through scripts/chaos.sh (which starts its own) or `ctest -L chaos`. The seed
// fixes the workload and the fault schedule, so a failing run can be replayed (timing still
// varies). Everything it leaves behind is under $WARREN_TEST_STACK_DIR/chaos-<prefix>/.
#include <charconv>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include "chaos/chaos_report.h"
#include "chaos/fault_injector.h"
#include "chaos/soak_state.h"
#include "chaos/warren_cluster.h"
#include "chaos/workload.h"
#include "shared/amqp/amqp_connection.h"
#include "support/test_stack.h"

namespace {

using namespace warren;
using namespace warren::chaos;
using Clock = std::chrono::steady_clock;
using std::chrono::seconds;

struct Options {
  seconds duration{150};
  std::uint64_t seed = 0;
  double rate = 40;
  seconds quiet_timeout{240};
};

// "90", "90s", "30m", "2h".
std::optional<seconds> parse_duration(std::string_view text) {
  long value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || value <= 0) return std::nullopt;
  const std::string_view unit(end, text.data() + text.size() - end);
  if (unit.empty() || unit == "s") return seconds(value);
  if (unit == "m") return seconds(value * 60);
  if (unit == "h") return seconds(value * 3600);
  return std::nullopt;
}

[[noreturn]] void usage(const char* problem) {
  std::fprintf(stderr,
               "warren-chaos: %s\nusage: warren-chaos [--duration 150s|30m] [--seed N] "
               "[--rate JOBS_PER_S] [--quiet-timeout 240s]\n",
               problem);
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options options;
  options.seed = std::random_device{}();
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) usage("a value is missing");
    const std::string_view value = argv[++i];
    if (flag == "--duration" || flag == "--quiet-timeout") {
      auto parsed = parse_duration(value);
      if (!parsed) usage("durations look like 150s, 30m or 1h");
      (flag == "--duration" ? options.duration : options.quiet_timeout) = *parsed;
    } else if (flag == "--seed") {
      if (std::from_chars(value.data(), value.data() + value.size(), options.seed).ec !=
          std::errc()) {
        usage("the seed is a number");
      }
    } else if (flag == "--rate") {
      options.rate = std::atof(std::string(value).c_str());
      if (options.rate <= 0 || options.rate > 2000) usage("--rate is 0..2000 jobs a second");
    } else {
      usage("unknown option");
    }
  }
  return options;
}

// Waits until every job is terminal, the outbox and the queues are empty and every confirmed
// poison message is recorded, three times in a row 2 s apart (longer than the management API's
// statistics interval, and a retry or delayed message still on its way shows up in between).
// False after the timeout.
bool wait_until_quiet(const SoakStateReader& reader, std::int64_t poison_expected,
                      seconds timeout) {
  const auto start = Clock::now();
  int quiet_in_a_row = 0;
  auto last_print = start;
  while (Clock::now() - start < timeout) {
    try {
      const auto p = reader.progress();
      const bool quiet = p.unfinished == 0 && p.outbox_rows == 0 && p.queued_messages == 0 &&
                         p.poison_recorded >= poison_expected;
      quiet_in_a_row = quiet ? quiet_in_a_row + 1 : 0;
      if (quiet_in_a_row >= 3) return true;
      if (Clock::now() - last_print > seconds(10)) {
        std::printf(
            "[chaos] settling: %lld of %lld jobs unfinished, %lld outbox rows, %lld "
            "messages queued\n",
            static_cast<long long>(p.unfinished), static_cast<long long>(p.jobs),
            static_cast<long long>(p.outbox_rows), static_cast<long long>(p.queued_messages));
        std::fflush(stdout);
        last_print = Clock::now();
      }
    } catch (const std::exception&) {
      quiet_in_a_row = 0;  // a server is still coming back
    }
    std::this_thread::sleep_for(seconds(2));
  }
  return false;
}

int run(const Options& options) {
  test::TestDatabase database;
  const std::string prefix = "chaos" + test::random_suffix();
  const std::string run_dir = test::test_env("WARREN_TEST_STACK_DIR") + "/chaos-" + prefix;
  std::filesystem::create_directories(run_dir + "/ledger");
  std::filesystem::create_directories(run_dir + "/logs");
  std::printf(
      "warren-chaos: seed %llu, %lld s of faults at %.0f jobs/s; database %s, prefix %s,"
      " logs in %s\n",
      static_cast<unsigned long long>(options.seed),
      static_cast<long long>(options.duration.count()), options.rate, database.name().c_str(),
      prefix.c_str(), run_dir.c_str());
  std::fflush(stdout);

  ClusterSettings settings;
  settings.database_url = database.url();
  settings.amqp_url = test::test_env("WARREN_TEST_AMQP_URL");
  settings.prefix = prefix;
  settings.queues = {"default", "critical"};
  settings.ledger_dir = run_dir + "/ledger";
  settings.log_dir = run_dir + "/logs";
  WarrenCluster cluster(settings);
  if (!test::wait_until([&] { return cluster.all_ready(); }, seconds(60))) {
    std::fprintf(stderr, "warren-chaos: the cluster did not become ready; logs in %s\n",
                 run_dir.c_str());
    database.keep();
    return 3;
  }

  WorkloadSettings load;
  load.jobs_per_second = options.rate;
  load.seed = options.seed;
  load.amqp_url = settings.amqp_url;
  load.prefix = prefix;
  Workload workload(load, cluster);
  FaultInjector faults({.seed = options.seed}, cluster);

  std::atomic<bool> stop{false};
  const auto start = Clock::now();
  std::thread clients([&] { workload.run(stop); });
  std::thread adversary([&] { faults.run(stop, start); });
  std::this_thread::sleep_until(start + options.duration);
  stop = true;
  adversary.join();
  clients.join();
  const double soak_seconds = std::chrono::duration<double>(Clock::now() - start).count();

  const auto poison = workload.poison();
  const auto confirmed_poison =
      std::count_if(poison.begin(), poison.end(), [](const auto& p) { return p.confirmed; });
  SoakStateReader reader(settings.database_url,
                         test::test_env("WARREN_TEST_RABBITMQ_MANAGEMENT_URL"), prefix,
                         settings.queues, settings.ledger_dir);
  const auto settle_start = Clock::now();
  const bool quiet = wait_until_quiet(reader, confirmed_poison, options.quiet_timeout);
  const double settle_seconds = std::chrono::duration<double>(Clock::now() - settle_start).count();
  const auto unclean_stops = cluster.stop_all();
  std::this_thread::sleep_for(seconds(2));  // the management API's queue statistics catch up

  ChaosReport report;
  report.seed = options.seed;
  report.soak_seconds = soak_seconds;
  report.settle_seconds = settle_seconds;
  report.submitted = workload.jobs();
  report.poison = poison;
  report.faults = faults.records();
  report.state = reader.read();
  report.invariants = check_invariants(report.submitted, report.poison, report.state);
  report.invariants.push_back(client_invariant(workload.counts()));
  report.invariants.push_back(fault_invariant(report.faults, quiet, unclean_stops));
  print_report(report, workload.counts());

  const bool held = std::all_of(report.invariants.begin(), report.invariants.end(),
                                [](const auto& r) { return r.held(); });
  if (!held) {
    database.keep();
    std::printf("\nwarren-chaos: FAILED (seed %llu). Kept database %s and logs in %s\n",
                static_cast<unsigned long long>(options.seed), database.name().c_str(),
                run_dir.c_str());
    return 1;
  }
  std::filesystem::remove_all(run_dir);
  // A passed soak leaves nothing on the shared broker (the database goes with TestDatabase);
  // a failed one keeps everything for the post-mortem.
  auto broker = amqp::AmqpConnection::open(settings.amqp_url, "chaos soak cleanup");
  test::delete_topology(broker, settings.prefix, settings.queues);
  std::printf("\nwarren-chaos: every invariant held (seed %llu)\n",
              static_cast<unsigned long long>(options.seed));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = parse_options(argc, argv);
  try {
    return run(options);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "warren-chaos: %s\n", error.what());
    return 3;
  }
}
