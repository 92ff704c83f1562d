// AMQP field tables in C++: message headers, queue arguments and client properties.
//
// rabbitmq-c represents a table as an amqp_table_t whose strings and nested arrays point into
// memory owned by someone else (a pool, a received frame). That is awkward to build and
// dangerous to keep, so the rest of Warren only sees FieldTable / FieldValue, plain value types
// that own their data. Conversion happens at the edge, in amqp_connection.cpp:
//   - EncodedTable turns a FieldTable into an amqp_table_t that lives as long as the
//     EncodedTable (one publish or one declare call);
//   - decode_table() copies a received amqp_table_t (headers, x-death) into a FieldTable.
//
// Value kinds are the ones Warren uses: string, 64-bit signed integer, bool, double, timestamp
// (the broker's x-death "time"), nested table, array and void. Received values of other wire
// kinds are widened: every integer kind becomes int64 (an unsigned 64-bit value above INT64_MAX
// wraps), float and decimal become double, byte arrays ('x') become strings. Integers are always
// sent as signed 64-bit ('l'), which RabbitMQ accepts for every numeric queue argument.
#pragma once

#include <amqp.h>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace warren::amqp {

// AMQP timestamp (wire kind 'T'): seconds since the Unix epoch. A distinct type so that a
// timestamp survives a decode/encode round trip (e.g. a dead letter's x-death being re-published)
// instead of turning into a plain integer.
struct Timestamp {
  std::uint64_t seconds = 0;
  friend bool operator==(const Timestamp&, const Timestamp&) = default;
};

class FieldValue;
using FieldArray = std::vector<FieldValue>;

// An ordered table of (key, value) pairs. Keys are unique (set() replaces); insertion order is
// kept because it is what goes on the wire and what a reader of a dead letter expects to see.
class FieldTable {
 public:
  using Entry = std::pair<std::string, FieldValue>;
  using const_iterator = std::vector<Entry>::const_iterator;

  FieldTable();
  FieldTable(std::initializer_list<Entry> entries);
  FieldTable(const FieldTable&);
  FieldTable(FieldTable&&) noexcept;
  FieldTable& operator=(const FieldTable&);
  FieldTable& operator=(FieldTable&&) noexcept;
  ~FieldTable();

  // Replaces the value of an existing key in place, or appends a new entry.
  void set(std::string key, FieldValue value);
  // nullptr when the key is absent.
  const FieldValue* find(std::string_view key) const;
  bool contains(std::string_view key) const { return find(key) != nullptr; }
  // Returns whether the key was present.
  bool erase(std::string_view key);

  std::size_t size() const;
  bool empty() const;
  const_iterator begin() const;
  const_iterator end() const;

  // Typed look-ups for the common header reads: nullopt when absent or of another kind.
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<std::int64_t> get_int(std::string_view key) const;
  std::optional<bool> get_bool(std::string_view key) const;

  // Same keys with equal values, in any order: a table is a map, and RabbitMQ re-sorts the
  // keys of the headers it hands back.
  friend bool operator==(const FieldTable& a, const FieldTable& b);

 private:
  std::vector<Entry> entries_;
};

// One AMQP field value. Implicitly constructible from the C++ types it holds, so tables read
// naturally: FieldTable{{"x-queue-type", "quorum"}, {"x-delivery-limit", 20}}.
class FieldValue {
 public:
  using Variant = std::variant<std::monostate, bool, std::int64_t, double, std::string, Timestamp,
                               FieldTable, FieldArray>;

  FieldValue() = default;  // void ('V')
  FieldValue(bool v) : value_(v) {}
  template <std::integral T>
  requires(!std::same_as<T, bool>) FieldValue(T v) : value_(static_cast<std::int64_t>(v)) {}
  template <std::floating_point T>
  FieldValue(T v) : value_(static_cast<double>(v)) {}
  // Without this overload a string literal would silently become a bool.
  FieldValue(const char* v) : value_(std::string(v)) {}
  FieldValue(std::string v) : value_(std::move(v)) {}
  FieldValue(std::string_view v) : value_(std::string(v)) {}
  FieldValue(Timestamp v) : value_(v) {}
  FieldValue(FieldTable v) : value_(std::move(v)) {}
  FieldValue(FieldArray v) : value_(std::move(v)) {}

  bool is_void() const { return std::holds_alternative<std::monostate>(value_); }
  template <class T>
  bool is() const {
    return std::holds_alternative<T>(value_);
  }
  // Throws std::bad_variant_access when the value is of another kind.
  template <class T>
  const T& as() const {
    return std::get<T>(value_);
  }
  template <class T>
  const T* get_if() const {
    return std::get_if<T>(&value_);
  }
  const Variant& variant() const { return value_; }

  friend bool operator==(const FieldValue& a, const FieldValue& b);

 private:
  Variant value_;
};

// Owns an amqp_table_t built from a FieldTable, with all the memory its entries point to
// (an amqp_pool_t freed by the destructor). Neither copyable nor movable: rabbitmq-c keeps
// pointers into it for the duration of the call it is passed to, so keep it on the stack.
// Throws std::invalid_argument for a key longer than 255 bytes (the AMQP short-string limit).
class EncodedTable {
 public:
  explicit EncodedTable(const FieldTable& table);
  ~EncodedTable();
  EncodedTable(const EncodedTable&) = delete;
  EncodedTable& operator=(const EncodedTable&) = delete;

  const amqp_table_t& get() const { return table_; }

 private:
  amqp_pool_t pool_;
  amqp_table_t table_;
};

// Deep copies of received rabbitmq-c values: the result owns everything, so the connection's
// frame buffers can be recycled right after.
FieldTable decode_table(const amqp_table_t& table);
FieldValue decode_value(const amqp_field_value_t& value);

// JSON views for logs and for the dead_letters table: tables become objects (nlohmann::json
// sorts their keys), arrays arrays, void null, timestamps their number of seconds.
void to_json(nlohmann::json& j, const FieldValue& value);
void to_json(nlohmann::json& j, const FieldTable& table);

// The JSON view as text (invalid UTF-8 replaced), for logs and test failure messages.
std::ostream& operator<<(std::ostream& out, const FieldValue& value);
std::ostream& operator<<(std::ostream& out, const FieldTable& table);

}  // namespace warren::amqp
