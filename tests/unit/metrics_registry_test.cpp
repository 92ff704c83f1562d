// Unit tests for shared/metrics/metrics_registry: exact text exposition output for each metric
// type, escaping, histogram buckets, the label cardinality cap, concurrent updates, name
// validation, the process metrics, and a line-by-line check that output is valid format 0.0.4.

#include "shared/metrics/metrics_registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <ctime>
#include <limits>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace warren::metrics {
namespace {

// Every registry starts with the overflow counter, which has no children until a fold.
const std::string kOverflowPreamble =
    "# HELP warren_metrics_label_overflow_total Label combinations folded into \"_other\" "
    "because their metric reached its cap on distinct label values.\n"
    "# TYPE warren_metrics_label_overflow_total counter\n";

// A small checker for text format 0.0.4, strict enough to catch what Prometheus would reject:
// every line is a HELP, a TYPE or a sample `name{label="value",...} value`; each family's TYPE
// comes once and before its samples; sample names belong to the current family; label values
// and help text use only the allowed escapes; the output ends with a newline.
::testing::AssertionResult IsValidExposition(const std::string& text) {
  static const std::string kName = R"([a-zA-Z_:][a-zA-Z0-9_:]*)";
  static const std::string kLabel = R"([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*")";
  static const std::string kValue =
      R"((?:NaN|[+-]Inf|[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?))";
  static const std::regex kHelp("^# HELP (" + kName + R"() (?:[^\\\n]|\\[\\n])*$)");
  static const std::regex kType("^# TYPE (" + kName + ") (counter|gauge|histogram)$");
  static const std::regex kSample("^(" + kName + R"()(\{)" + kLabel + "(?:," + kLabel +
                                  R"()*\})? )" + kValue + "$");

  if (text.empty()) return ::testing::AssertionFailure() << "empty output";
  if (text.back() != '\n') return ::testing::AssertionFailure() << "no final newline";
  std::istringstream lines(text);
  std::string line;
  std::string family;
  std::string type;
  std::set<std::string> typed;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    std::smatch match;
    if (std::regex_match(line, match, kHelp)) {
      family = match[1];
    } else if (std::regex_match(line, match, kType)) {
      if (!typed.insert(match[1]).second) {
        return ::testing::AssertionFailure() << "line " << number << ": TYPE repeated: " << line;
      }
      family = match[1];
      type = match[2];
    } else if (std::regex_match(line, match, kSample)) {
      const std::string name = match[1];
      const bool ok =
          name == family ||
          (type == "histogram" &&
           (name == family + "_bucket" || name == family + "_sum" || name == family + "_count"));
      if (family.empty() || !typed.count(family) || !ok) {
        return ::testing::AssertionFailure()
               << "line " << number << ": sample outside its family (" << family << "): " << line;
      }
    } else {
      return ::testing::AssertionFailure() << "line " << number << " malformed: [" << line << "]";
    }
  }
  return ::testing::AssertionSuccess();
}

// The value of the one sample line that starts with `series ` (name plus labels), or NaN.
double SampleValue(const std::string& text, const std::string& series) {
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return std::numeric_limits<double>::quiet_NaN();
}

bool HasLine(const std::string& text, const std::string& wanted) {
  return text.find("\n" + wanted + "\n") != std::string::npos || text.rfind(wanted + "\n", 0) == 0;
}

TEST(MetricsRegistryTest, EmptyRegistryRendersOnlyTheOverflowCounterHeader) {
  MetricsRegistry registry;
  EXPECT_EQ(registry.render(), kOverflowPreamble);
  EXPECT_TRUE(IsValidExposition(registry.render()));
}

TEST(MetricsRegistryTest, CounterWithoutLabels) {
  MetricsRegistry registry;
  Counter& jobs = registry.register_counter("warren_jobs_total", "Jobs accepted.").with();
  jobs.inc();
  jobs.inc(41);
  EXPECT_EQ(registry.render(), kOverflowPreamble +
                                   "# HELP warren_jobs_total Jobs accepted.\n"
                                   "# TYPE warren_jobs_total counter\n"
                                   "warren_jobs_total 42\n");
  EXPECT_DOUBLE_EQ(jobs.value(), 42);
}

TEST(MetricsRegistryTest, CounterWithLabelsSortsChildrenByLabelValues) {
  MetricsRegistry registry;
  CounterFamily& requests = registry.register_counter("warren_http_requests_total",
                                                      "HTTP requests.", {"route", "status"});
  requests.with({"POST /v1/jobs", "202"}).inc(3);
  requests.with({"GET /healthz", "200"}).inc();
  requests.with({"POST /v1/jobs", "400"}).inc(2);
  requests.with({"POST /v1/jobs", "202"}).inc();
  EXPECT_EQ(registry.render(),
            kOverflowPreamble +
                "# HELP warren_http_requests_total HTTP requests.\n"
                "# TYPE warren_http_requests_total counter\n"
                "warren_http_requests_total{route=\"GET /healthz\",status=\"200\"} 1\n"
                "warren_http_requests_total{route=\"POST /v1/jobs\",status=\"202\"} 4\n"
                "warren_http_requests_total{route=\"POST /v1/jobs\",status=\"400\"} 2\n");
}

TEST(MetricsRegistryTest, CounterFractionsAndHugeIntegers) {
  MetricsRegistry registry;
  Counter& seconds = registry.register_counter("busy_seconds_total", "").with();
  seconds.inc(2);
  seconds.add(0.5);
  seconds.add(-1);  // ignored: counters never go down
  seconds.add(std::nan(""));
  Counter& bytes = registry.register_counter("bytes_total", "").with();
  bytes.inc((std::uint64_t{1} << 60) + 1);  // not representable as a double
  const std::string text = registry.render();
  EXPECT_TRUE(HasLine(text, "busy_seconds_total 2.5")) << text;
  EXPECT_TRUE(HasLine(text, "bytes_total 1152921504606846977")) << text;
  // An empty help string leaves the HELP line out; TYPE is still there.
  EXPECT_EQ(text.find("# HELP busy_seconds_total"), std::string::npos);
  EXPECT_TRUE(HasLine(text, "# TYPE busy_seconds_total counter"));
}

TEST(MetricsRegistryTest, GaugeWithAndWithoutLabels) {
  MetricsRegistry registry;
  Gauge& connections = registry.register_gauge("warren_connections", "Open connections.").with();
  connections.set(3);
  connections.inc(2);
  connections.dec(0.5);
  connections.inc();
  connections.dec();
  GaugeFamily& depth =
      registry.register_gauge("warren_queue_depth", "Messages waiting.", {"queue"});
  depth.with({"jobs.email"}).set(-7);
  depth.with({"jobs.billing"}).set(12);
  EXPECT_EQ(registry.render(), kOverflowPreamble +
                                   "# HELP warren_connections Open connections.\n"
                                   "# TYPE warren_connections gauge\n"
                                   "warren_connections 4.5\n"
                                   "# HELP warren_queue_depth Messages waiting.\n"
                                   "# TYPE warren_queue_depth gauge\n"
                                   "warren_queue_depth{queue=\"jobs.billing\"} 12\n"
                                   "warren_queue_depth{queue=\"jobs.email\"} -7\n");
}

TEST(MetricsRegistryTest, GaugeSpecialValuesAndCurrentTime) {
  MetricsRegistry registry;
  GaugeFamily& family = registry.register_gauge("g", "", {"k"});
  family.with({"nan"}).set(std::nan(""));
  family.with({"pinf"}).set(std::numeric_limits<double>::infinity());
  family.with({"ninf"}).set(-std::numeric_limits<double>::infinity());
  Gauge& now = family.with({"now"});
  now.set_to_current_time();
  const std::string text = registry.render();
  EXPECT_TRUE(HasLine(text, "g{k=\"nan\"} NaN")) << text;
  EXPECT_TRUE(HasLine(text, "g{k=\"pinf\"} +Inf")) << text;
  EXPECT_TRUE(HasLine(text, "g{k=\"ninf\"} -Inf")) << text;
  EXPECT_NEAR(now.value(), static_cast<double>(std::time(nullptr)), 5);
  EXPECT_TRUE(IsValidExposition(text)) << text;
}

TEST(MetricsRegistryTest, NumbersAreIntegersWhenIntegralAndRoundTripOtherwise) {
  MetricsRegistry registry;
  GaugeFamily& family = registry.register_gauge("n", "", {"k"});
  const std::vector<std::pair<double, std::string>> cases = {
      {0, "0"},
      {-0.0, "0"},
      {1e6, "1000000"},
      {123456789012345, "123456789012345"},
      {0.1, "0.1"},
      {0.1 + 0.2, "0.30000000000000004"},
      {1.0 / 3, "0.3333333333333333"},
      {-2.5, "-2.5"},
      {123456.7, "123456.7"},
      {0.0001, "0.0001"},
      {0.00001234, "1.234e-05"},
      {1e-9, "1e-09"},
      {0x1p63, "9.223372036854776e+18"},
      {1.5e300, "1.5e+300"},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    family.with({std::to_string(100 + i)}).set(cases[i].first);
  }
  const std::string text = registry.render();
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const std::string series = "n{k=\"" + std::to_string(100 + i) + "\"}";
    EXPECT_TRUE(HasLine(text, series + " " + cases[i].second)) << series << "\n" << text;
    EXPECT_EQ(SampleValue(text, series), cases[i].first) << series;  // exact round trip
  }
  EXPECT_TRUE(IsValidExposition(text)) << text;
}

TEST(MetricsRegistryTest, CallbackGaugesAndCountersAreEvaluatedAtScrapeTime) {
  MetricsRegistry registry;
  double in_flight = 1;
  registry.register_gauge_callback("warren_in_flight", "Requests being handled.",
                                   [&in_flight] { return in_flight; });
  registry.register_counter_callback("warren_ticks_total", "Ticks.", [] { return 7.0; });
  registry.register_gauge_callback("warren_broken", "Fails.",
                                   []() -> double { throw std::runtime_error("no"); });
  EXPECT_TRUE(HasLine(registry.render(), "warren_in_flight 1"));
  in_flight = 5;
  const std::string text = registry.render();
  EXPECT_EQ(text, kOverflowPreamble +
                      "# HELP warren_in_flight Requests being handled.\n"
                      "# TYPE warren_in_flight gauge\n"
                      "warren_in_flight 5\n"
                      "# HELP warren_ticks_total Ticks.\n"
                      "# TYPE warren_ticks_total counter\n"
                      "warren_ticks_total 7\n"
                      "# HELP warren_broken Fails.\n"
                      "# TYPE warren_broken gauge\n");
  EXPECT_TRUE(IsValidExposition(text));
}

TEST(MetricsRegistryTest, HistogramWithoutLabelsIsCumulativeWithInf) {
  MetricsRegistry registry;
  Histogram& latency =
      registry.register_histogram("warren_latency_seconds", "Latency.", {0.25, 0.5, 1}).with();
  latency.observe(0.25);  // on a bound: counts in that bucket (le is "less or equal")
  latency.observe(0.125);
  latency.observe(0.75);
  latency.observe(3);
  latency.observe(std::nan(""));  // dropped
  EXPECT_EQ(registry.render(), kOverflowPreamble +
                                   "# HELP warren_latency_seconds Latency.\n"
                                   "# TYPE warren_latency_seconds histogram\n"
                                   "warren_latency_seconds_bucket{le=\"0.25\"} 2\n"
                                   "warren_latency_seconds_bucket{le=\"0.5\"} 2\n"
                                   "warren_latency_seconds_bucket{le=\"1\"} 3\n"
                                   "warren_latency_seconds_bucket{le=\"+Inf\"} 4\n"
                                   "warren_latency_seconds_sum 4.125\n"
                                   "warren_latency_seconds_count 4\n");
  EXPECT_EQ(latency.count(), 4u);
  EXPECT_EQ(latency.bucket_counts(), (std::vector<std::uint64_t>{2, 0, 1, 1}));
}

TEST(MetricsRegistryTest, HistogramWithLabelsPutsLeLast) {
  MetricsRegistry registry;
  HistogramFamily& family =
      registry.register_histogram("job_seconds", "Job run time.", {1, 2}, {"job_type"});
  family.with({"email"}).observe(1.5);
  family.with({"billing"});  // a child with no observations still renders all its lines
  EXPECT_EQ(registry.render(), kOverflowPreamble +
                                   "# HELP job_seconds Job run time.\n"
                                   "# TYPE job_seconds histogram\n"
                                   "job_seconds_bucket{job_type=\"billing\",le=\"1\"} 0\n"
                                   "job_seconds_bucket{job_type=\"billing\",le=\"2\"} 0\n"
                                   "job_seconds_bucket{job_type=\"billing\",le=\"+Inf\"} 0\n"
                                   "job_seconds_sum{job_type=\"billing\"} 0\n"
                                   "job_seconds_count{job_type=\"billing\"} 0\n"
                                   "job_seconds_bucket{job_type=\"email\",le=\"1\"} 0\n"
                                   "job_seconds_bucket{job_type=\"email\",le=\"2\"} 1\n"
                                   "job_seconds_bucket{job_type=\"email\",le=\"+Inf\"} 1\n"
                                   "job_seconds_sum{job_type=\"email\"} 1.5\n"
                                   "job_seconds_count{job_type=\"email\"} 1\n");
}

TEST(MetricsRegistryTest, DefaultLatencyBucketsRenderAsPlainDecimals) {
  EXPECT_EQ(default_latency_buckets_seconds(),
            (std::vector<double>{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                 2.5, 5, 10}));
  MetricsRegistry registry;
  registry.register_histogram("h", "", default_latency_buckets_seconds()).with().observe(0.003);
  const std::string text = registry.render();
  std::vector<std::string> les;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    const auto at = line.find("le=\"");
    if (at != std::string::npos)
      les.push_back(line.substr(at + 4, line.find('"', at + 4) - at - 4));
  }
  EXPECT_EQ(les,
            (std::vector<std::string>{"0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
                                      "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"}));
  EXPECT_TRUE(HasLine(text, "h_bucket{le=\"0.0025\"} 0"));
  EXPECT_TRUE(HasLine(text, "h_bucket{le=\"0.005\"} 1"));
}

TEST(MetricsRegistryTest, HistogramBoundsAreValidated) {
  MetricsRegistry registry;
  EXPECT_THROW(registry.register_histogram("h1", "", {1, 0.5}), std::invalid_argument);
  EXPECT_THROW(registry.register_histogram("h2", "", {1, 1}), std::invalid_argument);
  EXPECT_THROW(registry.register_histogram("h3", "", {std::nan(""), 1}), std::invalid_argument);
  EXPECT_THROW(registry.register_histogram("h4", "", {-std::numeric_limits<double>::infinity()}),
               std::invalid_argument);
  // A trailing +Inf is accepted and not rendered twice; no bounds at all is just +Inf.
  Histogram& with_inf =
      registry.register_histogram("h5", "", {1, std::numeric_limits<double>::infinity()}).with();
  EXPECT_EQ(with_inf.upper_bounds(), std::vector<double>{1});
  registry.register_histogram("h6", "", {}).with().observe(2);
  const std::string text = registry.render();
  EXPECT_TRUE(HasLine(text, "h6_bucket{le=\"+Inf\"} 1"));
  EXPECT_TRUE(HasLine(text, "h6_count 1"));
  EXPECT_TRUE(IsValidExposition(text)) << text;
}

TEST(MetricsRegistryTest, ScopedTimerObservesOnDestructionUnlessCancelled) {
  MetricsRegistry registry;
  Histogram& histogram = registry.register_histogram("t", "", {10}).with();
  {
    ScopedTimer timer(histogram);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_GE(timer.elapsed_seconds(), 0.002);
  }
  {
    ScopedTimer timer(histogram);
    timer.cancel();
  }
  EXPECT_EQ(histogram.count(), 1u);
  EXPECT_GE(histogram.sum(), 0.002);
  EXPECT_LT(histogram.sum(), 10);
}

TEST(MetricsRegistryTest, EscapesHelpAndLabelValues) {
  MetricsRegistry registry;
  registry.register_counter("esc_total", "Back\\slash, \"quotes\" stay,\nnew line.", {"path"})
      .with({"a\\b \"c\"\nd"})
      .inc();
  const std::string text = registry.render();
  EXPECT_EQ(text, kOverflowPreamble +
                      "# HELP esc_total Back\\\\slash, \"quotes\" stay,\\nnew line.\n"
                      "# TYPE esc_total counter\n"
                      "esc_total{path=\"a\\\\b \\\"c\\\"\\nd\"} 1\n");
  EXPECT_TRUE(IsValidExposition(text)) << text;
}

TEST(MetricsRegistryTest, InvalidUtf8LabelValuesAreRepaired) {
  MetricsRegistry registry;
  CounterFamily& family = registry.register_counter("u_total", "", {"route"});
  family.with({"/caf\xC3\xA9"}).inc();  // valid UTF-8 passes unchanged
  family
      .with({"/x\xFF"
             "y"})
      .inc();  // a stray byte
  family
      .with({"/x\xFE"
             "y"})
      .inc();                            // another stray byte: the same repaired child
  family.with({"/\xED\xA0\x80"}).inc();  // an encoded surrogate
  family.with({"/\xC0\xAF"}).inc();      // an overlong '/'
  const std::string text = registry.render();
  EXPECT_TRUE(HasLine(text, "u_total{route=\"/caf\xC3\xA9\"} 1")) << text;
  EXPECT_TRUE(HasLine(text, "u_total{route=\"/x\xEF\xBF\xBDy\"} 2")) << text;
  EXPECT_TRUE(HasLine(text, "u_total{route=\"/\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"} 1")) << text;
  EXPECT_TRUE(HasLine(text, "u_total{route=\"/\xEF\xBF\xBD\xEF\xBF\xBD\"} 1")) << text;
}

TEST(MetricsRegistryTest, ChildReferencesStayValidAsFamiliesGrow) {
  MetricsRegistry registry;
  CounterFamily& family = registry.register_counter("r_total", "", {"k"});
  Counter& first = family.with({"m"});
  for (int i = 0; i < 500; ++i) family.with({std::to_string(i)});
  for (int i = 0; i < 50; ++i) registry.register_gauge("other_" + std::to_string(i), "");
  EXPECT_EQ(&first, &family.with({"m"}));
  first.inc();
  EXPECT_TRUE(HasLine(registry.render(), "r_total{k=\"m\"} 1"));
}

TEST(MetricsRegistryTest, WrongNumberOfLabelValuesThrows) {
  MetricsRegistry registry;
  CounterFamily& family = registry.register_counter("w_total", "", {"a", "b"});
  EXPECT_THROW(family.with({"x"}), std::invalid_argument);
  EXPECT_THROW(family.with(), std::invalid_argument);
  EXPECT_THROW(family.with({"x", "y", "z"}), std::invalid_argument);
  EXPECT_THROW(registry.register_gauge("nolabels", "").with({"x"}), std::invalid_argument);
}

TEST(MetricsRegistryTest, CardinalityCapFoldsIntoOtherAndCountsFolds) {
  MetricsRegistry registry;
  CounterFamily& family = registry.register_counter("warren_jobs_by_type_total", "Jobs by type.",
                                                    {"job_type", "outcome"}, /*max_children=*/3);
  family.with({"email", "ok"}).inc();
  family.with({"email", "failed"}).inc();
  family.with({"billing", "ok"}).inc();
  EXPECT_EQ(family.child_count(), 3u);

  // Past the cap, new combinations share the "_other" child...
  Counter& folded_a = family.with({"attacker-1", "ok"});
  Counter& folded_b = family.with({"attacker-2", "ok"});
  EXPECT_EQ(&folded_a, &folded_b);
  folded_a.inc();
  folded_b.inc(4);
  family.with({"attacker-3", "x"}).inc();
  // ...while existing combinations keep their own child and are not counted as folds.
  family.with({"email", "ok"}).inc();
  EXPECT_EQ(family.child_count(), 4u);

  EXPECT_EQ(registry.render(),
            "# HELP warren_metrics_label_overflow_total Label combinations folded into \"_other\" "
            "because their metric reached its cap on distinct label values.\n"
            "# TYPE warren_metrics_label_overflow_total counter\n"
            "warren_metrics_label_overflow_total{metric=\"warren_jobs_by_type_total\"} 3\n"
            "# HELP warren_jobs_by_type_total Jobs by type.\n"
            "# TYPE warren_jobs_by_type_total counter\n"
            "warren_jobs_by_type_total{job_type=\"_other\",outcome=\"_other\"} 6\n"
            "warren_jobs_by_type_total{job_type=\"billing\",outcome=\"ok\"} 1\n"
            "warren_jobs_by_type_total{job_type=\"email\",outcome=\"failed\"} 1\n"
            "warren_jobs_by_type_total{job_type=\"email\",outcome=\"ok\"} 2\n");
}

TEST(MetricsRegistryTest, DefaultCapIsAThousandChildrenPerFamily) {
  MetricsRegistry registry;
  HistogramFamily& family = registry.register_histogram("cap_seconds", "", {1}, {"route"});
  EXPECT_EQ(family.max_children(), MetricsRegistry::kDefaultMaxChildren);
  EXPECT_EQ(MetricsRegistry::kDefaultMaxChildren, 1000u);
  for (int i = 0; i < 5000; ++i) family.with({"/r/" + std::to_string(i)}).observe(0.5);
  EXPECT_EQ(family.child_count(), 1001u);  // 1000 real combinations plus "_other"
  const std::string text = registry.render();
  EXPECT_TRUE(HasLine(text, "warren_metrics_label_overflow_total{metric=\"cap_seconds\"} 4000"));
  EXPECT_TRUE(HasLine(text, "cap_seconds_count{route=\"_other\"} 4000"));
  EXPECT_TRUE(IsValidExposition(text));
}

TEST(MetricsRegistryTest, ConcurrentUpdatesSumExactly) {
  constexpr int kThreads = 8;
  constexpr int kIterations = 100000;
  MetricsRegistry registry;
  Counter& counter = registry.register_counter("c_total", "").with();
  Counter& fractional = registry.register_counter("f_total", "").with();
  Gauge& gauge = registry.register_gauge("g", "").with();
  Histogram& histogram = registry.register_histogram("h", "", {0.5, 1.5}).with();
  CounterFamily& labelled = registry.register_counter("l_total", "", {"thread"}, 4);

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Threads 6 and 7 share label values with 0 and 1, and past the cap of 4 some fold, so
      // lookups, inserts and folds race with each other.
      Counter& mine = labelled.with({std::to_string(t % 6)});
      for (int i = 0; i < kIterations; ++i) {
        counter.inc();
        fractional.add(0.5);
        gauge.inc(2);
        gauge.dec();
        histogram.observe(i % 2 == 0 ? 0.25 : 1);
        mine.inc();
        if (i % 10000 == 0) labelled.with({std::to_string(t % 6)}).inc(0);
      }
    });
  }
  // Scrapes run while the counts move.
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(IsValidExposition(registry.render()));
  for (std::thread& thread : threads) thread.join();

  constexpr std::uint64_t kTotal = std::uint64_t{kThreads} * kIterations;
  const std::string text = registry.render();
  EXPECT_TRUE(HasLine(text, "c_total " + std::to_string(kTotal))) << text;
  EXPECT_TRUE(HasLine(text, "f_total " + std::to_string(kTotal / 2))) << text;
  EXPECT_TRUE(HasLine(text, "g " + std::to_string(kTotal))) << text;
  EXPECT_TRUE(HasLine(text, "h_bucket{le=\"0.5\"} " + std::to_string(kTotal / 2))) << text;
  EXPECT_TRUE(HasLine(text, "h_bucket{le=\"1.5\"} " + std::to_string(kTotal))) << text;
  EXPECT_TRUE(HasLine(text, "h_count " + std::to_string(kTotal))) << text;
  EXPECT_EQ(histogram.sum(), 0.25 * (kTotal / 2) + 1.0 * (kTotal / 2));
  double labelled_total = 0;
  for (const char* value : {"0", "1", "2", "3", "4", "5", "_other"}) {
    const double v = SampleValue(text, std::string("l_total{thread=\"") + value + "\"}");
    if (!std::isnan(v)) labelled_total += v;
  }
  EXPECT_EQ(labelled_total, static_cast<double>(kTotal));
  EXPECT_EQ(labelled.child_count(), 5u);  // 4 real values plus "_other"
}

TEST(MetricsRegistryTest, BadMetricNamesThrow) {
  MetricsRegistry registry;
  for (const std::string name : {"", "1abc", "a-b", "a b", "a.b", "caf\xC3\xA9", "a{b}"}) {
    EXPECT_THROW(registry.register_counter(name, ""), std::invalid_argument) << name;
    EXPECT_THROW(registry.register_gauge(name, ""), std::invalid_argument) << name;
    EXPECT_THROW(registry.register_histogram(name, "", {1}), std::invalid_argument) << name;
    EXPECT_THROW(registry.register_gauge_callback(name, "", [] { return 0.0; }),
                 std::invalid_argument)
        << name;
  }
  for (const std::string name : {"a", "_x", ":x", "ns:sub_name:1", "A9_:"}) {
    EXPECT_NO_THROW(registry.register_gauge(name, "")) << name;
  }
  EXPECT_TRUE(IsValidExposition(registry.render()));
}

TEST(MetricsRegistryTest, BadLabelNamesAndOtherMisuseThrow) {
  MetricsRegistry registry;
  EXPECT_THROW(registry.register_counter("a_total", "", {"__reserved"}), std::invalid_argument);
  EXPECT_THROW(registry.register_counter("b_total", "", {"a:b"}), std::invalid_argument);
  EXPECT_THROW(registry.register_counter("c_total", "", {"1a"}), std::invalid_argument);
  EXPECT_THROW(registry.register_counter("d_total", "", {""}), std::invalid_argument);
  EXPECT_THROW(registry.register_counter("e_total", "", {"x", "y", "x"}), std::invalid_argument);
  EXPECT_THROW(registry.register_histogram("f", "", {1}, {"le"}), std::invalid_argument);
  EXPECT_NO_THROW(registry.register_counter("g_total", "", {"le"}));  // only reserved in histograms
  EXPECT_THROW(registry.register_counter("h_total", "", {}, 0), std::invalid_argument);
  EXPECT_THROW(registry.register_gauge_callback("i", "", nullptr), std::invalid_argument);

  // Names collide across types, and with a histogram's derived sample names.
  registry.register_histogram("lat", "", {1});
  EXPECT_THROW(registry.register_counter("lat", ""), std::invalid_argument);
  EXPECT_THROW(registry.register_gauge("lat_count", ""), std::invalid_argument);
  EXPECT_THROW(registry.register_gauge_callback("lat_bucket", "", [] { return 0.0; }),
               std::invalid_argument);
  registry.register_gauge("size_sum", "");
  EXPECT_THROW(registry.register_histogram("size", "", {1}), std::invalid_argument);
  EXPECT_THROW(registry.register_counter(std::string(kLabelOverflowMetricName), ""),
               std::invalid_argument);
  // A failed registration leaves nothing behind: the names it checked are still free.
  EXPECT_NO_THROW(registry.register_counter("a_total", "", {"ok"}));
  EXPECT_NO_THROW(registry.register_counter("h_total", ""));
}

TEST(MetricsRegistryTest, ProcessMetricsArePresentAndPlausible) {
  MetricsRegistry registry;
  add_process_metrics(registry);
  const std::string text = registry.render();
  EXPECT_TRUE(IsValidExposition(text)) << text;
  EXPECT_TRUE(HasLine(text, "# TYPE process_cpu_seconds_total counter"));
  EXPECT_TRUE(HasLine(text, "# TYPE process_resident_memory_bytes gauge"));
  EXPECT_GT(SampleValue(text, "process_resident_memory_bytes"), 1e5);
  EXPECT_GE(SampleValue(text, "process_virtual_memory_bytes"),
            SampleValue(text, "process_resident_memory_bytes"));
  EXPECT_GE(SampleValue(text, "process_cpu_seconds_total"), 0);
  const double open_fds = SampleValue(text, "process_open_fds");
  EXPECT_GE(open_fds, 3);  // stdin, stdout, stderr
  EXPECT_LE(open_fds, SampleValue(text, "process_max_fds"));
  const double now = static_cast<double>(std::time(nullptr));
  const double started = SampleValue(text, "process_start_time_seconds");
  EXPECT_LE(started, now + 1);
  EXPECT_GT(started, now - 3600);  // this test binary started within the hour
}

TEST(MetricsRegistryTest, FullRegistryOutputIsValidLineByLine) {
  MetricsRegistry registry;
  add_process_metrics(registry);
  CounterFamily& requests = registry.register_counter(
      "warren_http_requests_total", "Requests\nby route\\status.", {"route", "status"}, 2);
  requests.with({"POST /v1/jobs", "202"}).inc();
  requests.with({"weird \"route\"\n\\", "500"}).inc();
  requests.with({"folded", "1"}).inc();
  registry.register_gauge("warren_up", "1 if up.").with().set(1);
  registry
      .register_histogram("warren_req_seconds", "", default_latency_buckets_seconds(), {"route"})
      .with({"POST /v1/jobs"})
      .observe(0.0123);
  registry.register_gauge_callback("warren_queue_depth", "Depth.", [] { return 3.5; });
  const std::string text = registry.render();
  EXPECT_TRUE(IsValidExposition(text)) << text;

  // The checker itself rejects what it should.
  EXPECT_FALSE(IsValidExposition("# TYPE x counter\nx 1"));                // no final newline
  EXPECT_FALSE(IsValidExposition("x 1\n"));                                // no TYPE first
  EXPECT_FALSE(IsValidExposition("# TYPE x counter\nx{a=\"b\\q\"} 1\n"));  // bad escape
  EXPECT_FALSE(IsValidExposition("# TYPE x counter\nx{a=\"b\"} 1.0e\n"));  // bad number
  EXPECT_FALSE(IsValidExposition("# TYPE x counter\ny 1\n"));              // wrong family
  EXPECT_FALSE(IsValidExposition("# TYPE x gauge\nx_sum 1\n"));            // not a histogram
  EXPECT_TRUE(IsValidExposition("# TYPE x histogram\nx_bucket{le=\"+Inf\"} 1\nx_count 1\n"));
}

}  // namespace
}  // namespace warren::metrics
