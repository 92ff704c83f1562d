// Implementation of Warren's hand-written Prometheus client (see metrics_registry.h): the
// lock-free child updates, bounded child lookup, text exposition format 0.0.4 rendering, and the
// standard process_* metrics read from /proc.

#include "shared/metrics/metrics_registry.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <utility>

namespace warren::metrics {
namespace {

double from_bits(std::uint64_t bits) {
  return std::bit_cast<double>(bits);
}
std::uint64_t to_bits(double value) {
  return std::bit_cast<std::uint64_t>(value);
}

// There is no portable lock-free fetch_add for double before C++20's atomic<double>, and that is
// a CAS loop underneath anyway; doing it on the bit pattern keeps every metric atomic<uint64_t>.
void atomic_add_double(std::atomic<std::uint64_t>& target, double amount) noexcept {
  std::uint64_t expected = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(expected, to_bits(from_bits(expected) + amount),
                                       std::memory_order_relaxed)) {
  }
}

template <typename Integer>
void append_integer(std::string& out, Integer value) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out.append(buffer, result.ptr);
}

// Integral values print as integers (a count of 1e6 reads "1000000", not "1e+06"); anything else
// prints the shortest text that parses back to the same double, so nothing is lost in a scrape.
// Like Go's %g (which other exporters use), that text is plain decimal from 1e-4 up and
// scientific below: le="0.0005" must be spelled the same by every service, as le is a label.
void append_double(std::string& out, double value) {
  const double magnitude = std::fabs(value);
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else if (value == std::trunc(value) && magnitude < 0x1p63) {
    append_integer(out, static_cast<std::int64_t>(value));
  } else {
    char buffer[64];
    const auto format = magnitude >= 1e-4 && magnitude < 0x1p63 ? std::chars_format::fixed
                                                                : std::chars_format::scientific;
    const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value, format);
    out.append(buffer, result.ptr);
  }
}

// HELP text escapes only backslash and newline; label values also escape the double quote.
void append_escaped(std::string& out, std::string_view text, bool escape_quote) {
  for (const char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '"':
        out += escape_quote ? "\\\"" : "\"";
        break;
      default:
        out += c;
    }
  }
}

// Writes {a="x",b="y",le="0.5"}, or nothing when there are no labels at all, as the format wants.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const LabelValues& values, std::string_view extra_name = {},
                   std::string_view extra_value = {}) {
  if (names.empty() && extra_name.empty()) return;
  out += '{';
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    append_escaped(out, values[i], /*escape_quote=*/true);
    out += '"';
  }
  if (!extra_name.empty()) {
    if (!names.empty()) out += ',';
    out += extra_name;
    out += "=\"";
    out += extra_value;
    out += '"';
  }
  out += '}';
}

void append_sample_prefix(std::string& out, std::string_view name, std::string_view suffix) {
  out += name;
  out += suffix;
}

bool is_name_start(char c, bool allow_colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
}

bool is_name_char(char c, bool allow_colon) {
  return is_name_start(c, allow_colon) || (c >= '0' && c <= '9');
}

bool matches_name_pattern(std::string_view name, bool allow_colon) {
  if (name.empty() || !is_name_start(name.front(), allow_colon)) return false;
  return std::all_of(name.begin() + 1, name.end(),
                     [allow_colon](char c) { return is_name_char(c, allow_colon); });
}

// Length of the valid UTF-8 sequence starting at text[i], or 0 if it is not one (overlong
// forms, surrogates and code points past U+10FFFF count as invalid, as Prometheus's parser
// treats them).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t length;
  unsigned char min_second = 0x80;
  unsigned char max_second = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) min_second = 0xA0;  // overlong
    if (lead == 0xED) max_second = 0x9F;  // surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) min_second = 0x90;  // overlong
    if (lead == 0xF4) max_second = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < min_second || byte(i + 1) > max_second) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

bool is_valid_utf8(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = utf8_sequence_length(text, i);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

std::string repair_utf8(std::string_view text) {
  std::string repaired;
  repaired.reserve(text.size() + 8);
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = utf8_sequence_length(text, i);
    if (length == 0) {
      repaired += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    } else {
      repaired.append(text.substr(i, length));
      i += length;
    }
  }
  return repaired;
}

void render_child(std::string& out, const FamilyBase& family, const LabelValues& values,
                  const Counter& counter) {
  append_sample_prefix(out, family.name(), "");
  append_labels(out, family.label_names(), values);
  out += ' ';
  detail::append_counter_value(out, counter);
  out += '\n';
}

void render_child(std::string& out, const FamilyBase& family, const LabelValues& values,
                  const Gauge& gauge) {
  append_sample_prefix(out, family.name(), "");
  append_labels(out, family.label_names(), values);
  out += ' ';
  append_double(out, gauge.value());
  out += '\n';
}

void render_child(std::string& out, const FamilyBase& family, const LabelValues& values,
                  const Histogram& histogram) {
  // One snapshot of the buckets feeds every cumulative line and _count, so they agree.
  const std::vector<std::uint64_t> counts = histogram.bucket_counts();
  const std::vector<double>& bounds = histogram.upper_bounds();
  std::uint64_t cumulative = 0;
  std::string le;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    cumulative += counts[i];
    le.clear();
    if (i < bounds.size()) {
      append_double(le, bounds[i]);
    } else {
      le = "+Inf";
    }
    append_sample_prefix(out, family.name(), "_bucket");
    append_labels(out, family.label_names(), values, "le", le);
    out += ' ';
    append_integer(out, cumulative);
    out += '\n';
  }
  append_sample_prefix(out, family.name(), "_sum");
  append_labels(out, family.label_names(), values);
  out += ' ';
  append_double(out, histogram.sum());
  out += '\n';
  append_sample_prefix(out, family.name(), "_count");
  append_labels(out, family.label_names(), values);
  out += ' ';
  append_integer(out, cumulative);
  out += '\n';
}

std::string_view type_name(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// A family without children whose one value is computed by a callback at scrape time.
class CallbackFamily final : public FamilyBase {
 public:
  CallbackFamily(std::string name, std::string help, MetricType type,
                 std::function<double()> callback)
      : FamilyBase(std::move(name), std::move(help), type, {}), callback_(std::move(callback)) {}

  void render_samples(std::string& out) const override {
    double value;
    try {
      value = callback_();
    } catch (...) {
      return;  // see register_gauge_callback: absent rather than wrong
    }
    out += name();
    out += ' ';
    append_double(out, value);
    out += '\n';
  }

 private:
  std::function<double()> callback_;
};

}  // namespace

namespace detail {

void append_counter_value(std::string& out, const Counter& counter) {
  const std::uint64_t whole = counter.whole_.load(std::memory_order_relaxed);
  const double fraction = from_bits(counter.fraction_bits_.load(std::memory_order_relaxed));
  if (fraction == 0) {
    append_integer(out, whole);  // exact even past 2^53
  } else {
    append_double(out, static_cast<double>(whole) + fraction);
  }
}

}  // namespace detail

void Counter::add(double amount) noexcept {
  if (!(amount > 0)) return;  // also rejects NaN
  atomic_add_double(fraction_bits_, amount);
}

double Counter::value() const noexcept {
  return static_cast<double>(whole_.load(std::memory_order_relaxed)) +
         from_bits(fraction_bits_.load(std::memory_order_relaxed));
}

void Gauge::set(double value) noexcept {
  bits_.store(to_bits(value), std::memory_order_relaxed);
}

void Gauge::inc(double amount) noexcept {
  atomic_add_double(bits_, amount);
}

void Gauge::set_to_current_time() noexcept {
  const auto since_epoch = std::chrono::system_clock::now().time_since_epoch();
  set(std::chrono::duration<double>(since_epoch).count());
}

double Gauge::value() const noexcept {
  return from_bits(bits_.load(std::memory_order_relaxed));
}

Histogram::Histogram(std::shared_ptr<const std::vector<double>> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(upper_bounds_->size() + 1)) {}

void Histogram::observe(double value) noexcept {
  if (std::isnan(value)) return;
  // Bucket i counts bounds[i-1] < value <= bounds[i]: the first bound not below the value.
  const auto bound = std::lower_bound(upper_bounds_->begin(), upper_bounds_->end(), value);
  buckets_[static_cast<std::size_t>(bound - upper_bounds_->begin())].fetch_add(
      1, std::memory_order_relaxed);
  atomic_add_double(sum_bits_, value);
}

std::vector<std::uint64_t> Histogram::bucket_counts() const {
  std::vector<std::uint64_t> counts(upper_bounds_->size() + 1);
  for (std::size_t i = 0; i < counts.size(); ++i) {
    counts[i] = buckets_[i].load(std::memory_order_relaxed);
  }
  return counts;
}

std::uint64_t Histogram::count() const noexcept {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i <= upper_bounds_->size(); ++i) {
    total += buckets_[i].load(std::memory_order_relaxed);
  }
  return total;
}

double Histogram::sum() const noexcept {
  return from_bits(sum_bits_.load(std::memory_order_relaxed));
}

ScopedTimer::~ScopedTimer() {
  if (histogram_ != nullptr) histogram_->observe(elapsed_seconds());
}

double ScopedTimer::elapsed_seconds() const noexcept {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

FamilyBase::FamilyBase(std::string name, std::string help, MetricType type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {}

template <typename Child>
Family<Child>::Family(std::string name, std::string help, MetricType type,
                      std::vector<std::string> label_names, std::size_t max_children,
                      ChildFactory make_child, Family<Counter>* overflow)
    : FamilyBase(std::move(name), std::move(help), type, std::move(label_names)),
      max_children_(max_children),
      make_child_(std::move(make_child)),
      overflow_(overflow),
      overflow_values_(this->label_names().size(), std::string(kOverflowLabelValue)) {}

template <typename Child>
Child* Family<Child>::find_locked(const LabelValues& label_values, bool& folded) const {
  if (const auto it = children_.find(label_values); it != children_.end()) {
    return it->second.get();
  }
  if (children_.size() < max_children_) return nullptr;  // room for a new child
  folded = true;
  const auto other = children_.find(overflow_values_);
  return other == children_.end() ? nullptr : other->second.get();
}

template <typename Child>
Child& Family<Child>::with(const LabelValues& label_values) {
  if (label_values.size() != label_names().size()) {
    throw std::invalid_argument("metric " + name() + " takes " +
                                std::to_string(label_names().size()) + " label values, got " +
                                std::to_string(label_values.size()));
  }
  const LabelValues* key = &label_values;
  LabelValues repaired;
  if (!std::all_of(label_values.begin(), label_values.end(), is_valid_utf8)) {
    repaired.reserve(label_values.size());
    for (const std::string& value : label_values) repaired.push_back(repair_utf8(value));
    key = &repaired;
  }

  bool folded = false;
  Child* child;
  {
    std::shared_lock lock(mutex_);
    child = find_locked(*key, folded);
  }
  if (child == nullptr) {
    // Another thread may have inserted (or filled the family) since the shared lookup.
    std::unique_lock lock(mutex_);
    folded = false;
    child = find_locked(*key, folded);
    if (child == nullptr) {
      const LabelValues& new_key = folded ? overflow_values_ : *key;
      child = children_.emplace(new_key, make_child_()).first->second.get();
    }
  }
  // Outside our lock: the overflow family has its own, and never folds, so this cannot recurse.
  if (folded && overflow_ != nullptr) overflow_->with(LabelValues{name()}).inc();
  return *child;
}

template <typename Child>
std::size_t Family<Child>::child_count() const {
  std::shared_lock lock(mutex_);
  return children_.size();
}

template <typename Child>
void Family<Child>::render_samples(std::string& out) const {
  std::shared_lock lock(mutex_);
  for (const auto& [values, child] : children_) render_child(out, *this, values, *child);
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

std::vector<double> batch_size_buckets() {
  return {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};
}

std::vector<double> default_latency_buckets_seconds() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

MetricsRegistry::MetricsRegistry() {
  // Never capped: its only label is a family name, which code (not traffic) chooses.
  overflow_ = &register_counter(std::string(kLabelOverflowMetricName),
                                "Label combinations folded into \"_other\" because their "
                                "metric reached its cap on distinct label values.",
                                {"metric"}, std::numeric_limits<std::size_t>::max());
}

MetricsRegistry::~MetricsRegistry() = default;

void MetricsRegistry::claim_names(const std::string& name, MetricType type,
                                  const std::vector<std::string>& label_names) {
  if (!matches_name_pattern(name, /*allow_colon=*/true)) {
    throw std::invalid_argument("invalid metric name \"" + name + "\"");
  }
  std::vector<std::string> sample_names{name};
  if (type == MetricType::kHistogram) {
    sample_names = {name, name + "_bucket", name + "_sum", name + "_count"};
  }
  for (const std::string& sample_name : sample_names) {
    if (sample_names_.count(sample_name) != 0) {
      throw std::invalid_argument("metric name \"" + sample_name + "\" is already registered");
    }
  }
  for (std::size_t i = 0; i < label_names.size(); ++i) {
    const std::string& label = label_names[i];
    if (!matches_name_pattern(label, /*allow_colon=*/false) || label.starts_with("__")) {
      throw std::invalid_argument("invalid label name \"" + label + "\" for metric " + name);
    }
    if (type == MetricType::kHistogram && label == "le") {
      throw std::invalid_argument("label name \"le\" is reserved in histogram " + name);
    }
    if (std::find(label_names.begin(), label_names.begin() + static_cast<std::ptrdiff_t>(i),
                  label) != label_names.begin() + static_cast<std::ptrdiff_t>(i)) {
      throw std::invalid_argument("label name \"" + label + "\" repeated in metric " + name);
    }
  }
  sample_names_.insert(sample_names.begin(), sample_names.end());
}

FamilyBase& MetricsRegistry::add_family(std::unique_ptr<FamilyBase> family) {
  families_.push_back(std::move(family));
  return *families_.back();
}

namespace {

void check_max_children(const std::string& name, std::size_t max_children) {
  if (max_children == 0) {
    throw std::invalid_argument("metric " + name + " needs max_children of at least 1");
  }
}

}  // namespace

CounterFamily& MetricsRegistry::register_counter(std::string name, std::string help,
                                                 std::vector<std::string> label_names,
                                                 std::size_t max_children) {
  std::lock_guard lock(mutex_);
  check_max_children(name, max_children);
  claim_names(name, MetricType::kCounter, label_names);
  return static_cast<CounterFamily&>(add_family(std::make_unique<CounterFamily>(
      std::move(name), std::move(help), MetricType::kCounter, std::move(label_names), max_children,
      [] { return std::make_unique<Counter>(); }, overflow_)));
}

GaugeFamily& MetricsRegistry::register_gauge(std::string name, std::string help,
                                             std::vector<std::string> label_names,
                                             std::size_t max_children) {
  std::lock_guard lock(mutex_);
  check_max_children(name, max_children);
  claim_names(name, MetricType::kGauge, label_names);
  return static_cast<GaugeFamily&>(add_family(std::make_unique<GaugeFamily>(
      std::move(name), std::move(help), MetricType::kGauge, std::move(label_names), max_children,
      [] { return std::make_unique<Gauge>(); }, overflow_)));
}

HistogramFamily& MetricsRegistry::register_histogram(std::string name, std::string help,
                                                     std::vector<double> upper_bounds,
                                                     std::vector<std::string> label_names,
                                                     std::size_t max_children) {
  // Prometheus always adds le="+Inf" itself; accepting it in the list saves callers a special
  // case.
  if (!upper_bounds.empty() && upper_bounds.back() == std::numeric_limits<double>::infinity()) {
    upper_bounds.pop_back();
  }
  for (std::size_t i = 0; i < upper_bounds.size(); ++i) {
    if (!std::isfinite(upper_bounds[i]) || (i > 0 && !(upper_bounds[i - 1] < upper_bounds[i]))) {
      throw std::invalid_argument("histogram " + name +
                                  " bucket bounds must be finite and strictly increasing");
    }
  }
  std::lock_guard lock(mutex_);
  check_max_children(name, max_children);
  claim_names(name, MetricType::kHistogram, label_names);
  auto bounds = std::make_shared<const std::vector<double>>(std::move(upper_bounds));
  return static_cast<HistogramFamily&>(add_family(std::make_unique<HistogramFamily>(
      std::move(name), std::move(help), MetricType::kHistogram, std::move(label_names),
      max_children, [bounds] { return std::make_unique<Histogram>(bounds); }, overflow_)));
}

void MetricsRegistry::register_gauge_callback(std::string name, std::string help,
                                              std::function<double()> callback) {
  if (!callback) throw std::invalid_argument("gauge callback " + name + " is empty");
  std::lock_guard lock(mutex_);
  claim_names(name, MetricType::kGauge, {});
  add_family(std::make_unique<CallbackFamily>(std::move(name), std::move(help), MetricType::kGauge,
                                              std::move(callback)));
}

void MetricsRegistry::register_counter_callback(std::string name, std::string help,
                                                std::function<double()> callback) {
  if (!callback) throw std::invalid_argument("counter callback " + name + " is empty");
  std::lock_guard lock(mutex_);
  claim_names(name, MetricType::kCounter, {});
  add_family(std::make_unique<CallbackFamily>(std::move(name), std::move(help),
                                              MetricType::kCounter, std::move(callback)));
}

std::string MetricsRegistry::render() const {
  // Families are never removed, so pointers copied under the lock stay valid after it; callbacks
  // then run without the registry lock, and a slow one cannot stall registration.
  std::vector<const FamilyBase*> families;
  {
    std::lock_guard lock(mutex_);
    families.reserve(families_.size());
    for (const auto& family : families_) families.push_back(family.get());
  }
  std::string out;
  out.reserve(families.size() * 256);
  for (const FamilyBase* family : families) {
    if (!family->help().empty()) {
      out += "# HELP ";
      out += family->name();
      out += ' ';
      append_escaped(out, family->help(), /*escape_quote=*/false);
      out += '\n';
    }
    out += "# TYPE ";
    out += family->name();
    out += ' ';
    out += type_name(family->type());
    out += '\n';
    family->render_samples(out);
  }
  return out;
}

namespace {

// The process_* readers throw when /proc cannot be read, which leaves the sample out of that
// scrape (see register_gauge_callback).

double page_size_bytes() {
  return static_cast<double>(sysconf(_SC_PAGESIZE));
}

// /proc/self/statm: sizes in pages, "size resident shared text lib data dt".
std::pair<double, double> read_statm() {
  std::ifstream statm("/proc/self/statm");
  double size_pages = 0;
  double resident_pages = 0;
  if (!(statm >> size_pages >> resident_pages)) {
    throw std::runtime_error("cannot read /proc/self/statm");
  }
  return {size_pages, resident_pages};
}

double cpu_seconds() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) throw std::runtime_error("getrusage failed");
  const auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

double open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) throw std::runtime_error("cannot open /proc/self/fd");
  // The directory stream holds an fd of its own while we count; it is not the process's.
  const std::string own_fd = std::to_string(dirfd(dir));
  double count = 0;
  while (const dirent* entry = readdir(dir)) {
    const std::string_view fd_name = entry->d_name;
    if (fd_name != "." && fd_name != ".." && fd_name != own_fd) ++count;
  }
  closedir(dir);
  return count;
}

double max_fds() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) throw std::runtime_error("getrlimit failed");
  if (limit.rlim_cur == RLIM_INFINITY) return std::numeric_limits<double>::infinity();
  return static_cast<double>(limit.rlim_cur);
}

// The kernel's start time (field 22 of /proc/self/stat, clock ticks after boot) plus the boot
// time (btime in /proc/stat): the same source other exporters use, so restarts line up.
double start_time_seconds() {
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // comm (field 2) is in parentheses and may itself contain spaces or ')'.
  const std::size_t comm_end = stat.rfind(')');
  if (comm_end == std::string::npos) throw std::runtime_error("cannot parse /proc/self/stat");
  std::istringstream fields(stat.substr(comm_end + 1));
  std::string field;
  for (int index = 3; index <= 22; ++index) {  // fields after comm start at 3 (state)
    if (!(fields >> field)) throw std::runtime_error("cannot parse /proc/self/stat");
  }
  const double start_ticks = std::stod(field);

  std::ifstream proc_stat("/proc/stat");
  std::string line;
  while (std::getline(proc_stat, line)) {
    if (line.starts_with("btime ")) {
      const double boot_time = std::stod(line.substr(6));
      return boot_time + start_ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
    }
  }
  throw std::runtime_error("no btime in /proc/stat");
}

}  // namespace

void add_process_metrics(MetricsRegistry& registry) {
  registry.register_counter_callback(
      "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", cpu_seconds);
  registry.register_gauge_callback("process_open_fds", "Number of open file descriptors.",
                                   open_fds);
  registry.register_gauge_callback("process_max_fds", "Maximum number of open file descriptors.",
                                   max_fds);
  registry.register_gauge_callback("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                                   [] { return read_statm().first * page_size_bytes(); });
  registry.register_gauge_callback("process_resident_memory_bytes",
                                   "Resident memory size in bytes.",
                                   [] { return read_statm().second * page_size_bytes(); });
  // Fixed for the life of the process: read once. If /proc failed, fall back to now, which is
  // at worst a little late (this runs at startup) and still moves on every restart.
  double start_time;
  try {
    start_time = start_time_seconds();
  } catch (const std::exception&) {
    start_time =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  }
  registry.register_gauge_callback("process_start_time_seconds",
                                   "Start time of the process since unix epoch in seconds.",
                                   [start_time] { return start_time; });
}

}  // namespace warren::metrics
