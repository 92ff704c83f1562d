// Warren's metrics: a small hand-written Prometheus client (Debian 12 packages none for C++).
//
// The producer and the consumers each own one MetricsRegistry, register their metric families
// at startup, cache the child references they increment on hot paths, and serve render() on
// their /metrics endpoint with content type kPrometheusContentType. Only what Warren needs is
// here: counters, gauges (set or computed at scrape time), histograms with fixed buckets, the
// standard process_* metrics, and text exposition format 0.0.4.
//
// Threading model:
//   * Updating a child (Counter::inc, Gauge::set, Histogram::observe, ...) is lock-free: plain
//     atomics, relaxed ordering (a scrape needs each value to be some recent value, it does not
//     need a consistent cut across values). Doubles live in std::atomic<uint64_t> as their bit
//     pattern and are updated with a compare-and-swap loop.
//   * Family::with() looks a child up under the family's shared_mutex (shared for a hit,
//     exclusive to insert). It is cheap but not free, so hot paths call it once and keep the
//     reference: children are never removed, so a reference stays valid as long as the registry.
//   * Registration takes the registry's mutex. render() takes it only to copy the family list,
//     then reads the atomics; gauge and counter callbacks run on the scraping thread with no
//     registry lock held, so they may block briefly but must be thread-safe themselves.
//
// Label cardinality is bounded. Label values often come from outside (a request's route, a job's
// type, a status code), and every distinct combination is a child that lives until the process
// exits and a series that Prometheus stores. Unbounded, a client sending random paths or job
// types would grow our memory and the monitoring system's without limit. So each family holds
// at most max_children label combinations; later new combinations share one child whose label
// values are all "_other", and warren_metrics_label_overflow_total{metric="<family>"} counts
// every with() call that was folded so the loss of detail is visible and alertable.

#ifndef WARREN_SHARED_METRICS_METRICS_REGISTRY_H_
#define WARREN_SHARED_METRICS_METRICS_REGISTRY_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace warren::metrics {

// What a /metrics response must declare as its Content-Type for render()'s output.
inline constexpr std::string_view kPrometheusContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// The label value every folded label combination gets once a family is at its cap.
inline constexpr std::string_view kOverflowLabelValue = "_other";

// The counter that records folds; registered by every MetricsRegistry, labelled by family name.
inline constexpr std::string_view kLabelOverflowMetricName = "warren_metrics_label_overflow_total";

using LabelValues = std::vector<std::string>;

class Counter;
namespace detail {
// The renderer; a friend of Counter so an integer count renders exactly even above 2^53.
void append_counter_value(std::string& out, const Counter& counter);
}  // namespace detail

// Monotonic count. Integer increments (the common case) are a single fetch_add and render
// exactly at any size; fractional amounts (e.g. seconds) accumulate separately as a double.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  void inc(std::uint64_t n = 1) noexcept { whole_.fetch_add(n, std::memory_order_relaxed); }
  // Negative and NaN amounts are ignored: a counter going down reads as a process restart to
  // rate(), and a NaN would stick forever.
  void add(double amount) noexcept;
  double value() const noexcept;

 private:
  friend void detail::append_counter_value(std::string& out, const Counter& counter);
  std::atomic<std::uint64_t> whole_{0};
  std::atomic<std::uint64_t> fraction_bits_{0};  // bit pattern of a double, 0 == 0.0
};

// A value that goes up and down (connections, queue depth, last success time).
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void set(double value) noexcept;
  void inc(double amount = 1) noexcept;
  void dec(double amount = 1) noexcept { inc(-amount); }
  // Stamps the current wall-clock time, for "last time X happened" gauges.
  void set_to_current_time() noexcept;
  double value() const noexcept;

 private:
  std::atomic<std::uint64_t> bits_{0};
};

// Distribution over fixed upper bounds. Each observation increments exactly one non-cumulative
// bucket; render() makes them cumulative and derives _count from the same snapshot, so the
// +Inf bucket always equals _count even while other threads observe.
class Histogram {
 public:
  // upper_bounds must be finite and strictly increasing (MetricsRegistry checks); shared so all
  // children of a family use one copy.
  explicit Histogram(std::shared_ptr<const std::vector<double>> upper_bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  // NaN is dropped: it belongs to no bucket and would make _sum NaN for good.
  void observe(double value) noexcept;

  const std::vector<double>& upper_bounds() const noexcept { return *upper_bounds_; }
  // Non-cumulative counts, one per upper bound plus the trailing +Inf bucket.
  std::vector<std::uint64_t> bucket_counts() const;
  std::uint64_t count() const noexcept;
  double sum() const noexcept;

 private:
  std::shared_ptr<const std::vector<double>> upper_bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;
  std::atomic<std::uint64_t> sum_bits_{0};
};

// Observes the seconds between construction and destruction into a histogram, so a scope's
// latency is recorded on every exit path including exceptions.
class ScopedTimer {
 public:
  explicit ScopedTimer(Histogram& histogram) noexcept
      : histogram_(&histogram), start_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer();
  ScopedTimer(const ScopedTimer&) = delete;
  ScopedTimer& operator=(const ScopedTimer&) = delete;

  double elapsed_seconds() const noexcept;
  // For paths whose latency would distort the distribution (e.g. a rejected request).
  void cancel() noexcept { histogram_ = nullptr; }

 private:
  Histogram* histogram_;
  std::chrono::steady_clock::time_point start_;
};

enum class MetricType { kCounter, kGauge, kHistogram };

// What every family shares, so the registry can keep and render them in one ordered list.
class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, MetricType type,
             std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  FamilyBase(const FamilyBase&) = delete;
  FamilyBase& operator=(const FamilyBase&) = delete;

  const std::string& name() const noexcept { return name_; }
  const std::string& help() const noexcept { return help_; }
  MetricType type() const noexcept { return type_; }
  const std::vector<std::string>& label_names() const noexcept { return label_names_; }

  // Appends this family's sample lines (not HELP/TYPE) to out.
  virtual void render_samples(std::string& out) const = 0;

 private:
  std::string name_;
  std::string help_;
  MetricType type_;
  std::vector<std::string> label_names_;
};

// A metric name with fixed label names and one child per distinct combination of label values,
// up to max_children combinations (see the top of this file).
template <typename Child>
class Family final : public FamilyBase {
 public:
  using ChildFactory = std::function<std::unique_ptr<Child>()>;

  // Built by MetricsRegistry; overflow is null only for the overflow counter itself.
  Family(std::string name, std::string help, MetricType type, std::vector<std::string> label_names,
         std::size_t max_children, ChildFactory make_child, Family<Counter>* overflow);

  // The child for these label values, one per label name, in declaration order. Throws
  // std::invalid_argument if the count is wrong (a programming error). Values that are not
  // valid UTF-8 are repaired (U+FFFD), because one bad byte would make Prometheus reject the
  // whole scrape.
  Child& with(const LabelValues& label_values);
  // The single child of a family registered without labels.
  Child& with() { return with(LabelValues{}); }

  std::size_t max_children() const noexcept { return max_children_; }
  std::size_t child_count() const;

  void render_samples(std::string& out) const override;

 private:
  // Under mutex_ (either mode): the child for these values, or the "_other" child if the family
  // is full (setting folded), or null when a child must be inserted.
  Child* find_locked(const LabelValues& label_values, bool& folded) const;

  std::size_t max_children_;
  ChildFactory make_child_;
  Family<Counter>* overflow_;
  LabelValues overflow_values_;  // kOverflowLabelValue once per label name
  mutable std::shared_mutex mutex_;
  // std::map keeps children sorted by label values (a stable render order) and never moves a
  // child: callers hold references into it.
  std::map<LabelValues, std::unique_ptr<Child>> children_;
};

// Defined in metrics_registry.cpp for exactly these three child types.
extern template class Family<Counter>;
extern template class Family<Gauge>;
extern template class Family<Histogram>;

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// 0.5 ms to 10 s: covers an in-process handler up to a slow database round trip.
std::vector<double> default_latency_buckets_seconds();
// Buckets for "how many items per batch" histograms (group commits, confirm waits): 1 .. 1000.
std::vector<double> batch_size_buckets();

// Owns every metric family of a process and renders them for a scrape. Neither copyable nor
// movable: callers hold references into it.
class MetricsRegistry {
 public:
  static constexpr std::size_t kDefaultMaxChildren = 1000;

  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registration throws std::invalid_argument for an invalid or already-used metric name, an
  // invalid, reserved or repeated label name, max_children == 0, or histogram bounds that are
  // not finite and strictly increasing (a trailing +Inf is accepted and dropped). These are
  // programming errors, found at startup.
  CounterFamily& register_counter(std::string name, std::string help,
                                  std::vector<std::string> label_names = {},
                                  std::size_t max_children = kDefaultMaxChildren);
  GaugeFamily& register_gauge(std::string name, std::string help,
                              std::vector<std::string> label_names = {},
                              std::size_t max_children = kDefaultMaxChildren);
  HistogramFamily& register_histogram(std::string name, std::string help,
                                      std::vector<double> upper_bounds,
                                      std::vector<std::string> label_names = {},
                                      std::size_t max_children = kDefaultMaxChildren);

  // Values that already live elsewhere (in-flight requests, queue depth, process stats) are read
  // at scrape time instead of being mirrored on every change. If the callback throws, the
  // sample is left out of that scrape (an absent series reads as "unknown"; a made-up value
  // would not).
  void register_gauge_callback(std::string name, std::string help,
                               std::function<double()> callback);
  // Same, for a value that only grows (e.g. process_cpu_seconds_total), so it is typed counter.
  void register_counter_callback(std::string name, std::string help,
                                 std::function<double()> callback);

  // Prometheus text exposition format 0.0.4: families in registration order, children sorted by
  // label values.
  std::string render() const;

 private:
  void claim_names(const std::string& name, MetricType type,
                   const std::vector<std::string>& label_names);
  FamilyBase& add_family(std::unique_ptr<FamilyBase> family);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<FamilyBase>> families_;
  // Every sample name in use, including a histogram's _bucket, _sum and _count.
  std::set<std::string, std::less<>> sample_names_;
  CounterFamily* overflow_ = nullptr;
};

// Registers the standard process_* metrics other exporters expose (resident and virtual memory,
// CPU seconds, open and max file descriptors, start time), read from /proc and getrusage at
// scrape time, so dashboards built for other services work unchanged. Call once per registry.
void add_process_metrics(MetricsRegistry& registry);

}  // namespace warren::metrics

#endif  // WARREN_SHARED_METRICS_METRICS_REGISTRY_H_
