// FieldTable / FieldValue and their conversion to and from rabbitmq-c's amqp_table_t
// (see field_table.h for how this fits in the AMQP layer).
#include "shared/amqp/field_table.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <new>
#include <ostream>
#include <stdexcept>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace warren::amqp {

// ---- FieldTable ---------------------------------------------------------------------------
// The special members are defined here, where FieldValue is complete, because the class holds
// a vector of pairs containing FieldValue.

FieldTable::FieldTable() = default;
FieldTable::FieldTable(const FieldTable&) = default;
FieldTable::FieldTable(FieldTable&&) noexcept = default;
FieldTable& FieldTable::operator=(const FieldTable&) = default;
FieldTable& FieldTable::operator=(FieldTable&&) noexcept = default;
FieldTable::~FieldTable() = default;

FieldTable::FieldTable(std::initializer_list<Entry> entries) {
  // Through set() so that a duplicated key keeps the AMQP "keys are unique" invariant.
  for (const auto& entry : entries) set(entry.first, entry.second);
}

void FieldTable::set(std::string key, FieldValue value) {
  for (auto& entry : entries_) {
    if (entry.first == key) {
      entry.second = std::move(value);
      return;
    }
  }
  entries_.emplace_back(std::move(key), std::move(value));
}

const FieldValue* FieldTable::find(std::string_view key) const {
  for (const auto& entry : entries_) {
    if (entry.first == key) return &entry.second;
  }
  return nullptr;
}

bool FieldTable::erase(std::string_view key) {
  auto it = std::find_if(entries_.begin(), entries_.end(),
                         [&](const Entry& entry) { return entry.first == key; });
  if (it == entries_.end()) return false;
  entries_.erase(it);
  return true;
}

std::size_t FieldTable::size() const {
  return entries_.size();
}
bool FieldTable::empty() const {
  return entries_.empty();
}
FieldTable::const_iterator FieldTable::begin() const {
  return entries_.begin();
}
FieldTable::const_iterator FieldTable::end() const {
  return entries_.end();
}

std::optional<std::string> FieldTable::get_string(std::string_view key) const {
  const FieldValue* value = find(key);
  if (value == nullptr || !value->is<std::string>()) return std::nullopt;
  return value->as<std::string>();
}

std::optional<std::int64_t> FieldTable::get_int(std::string_view key) const {
  const FieldValue* value = find(key);
  if (value == nullptr || !value->is<std::int64_t>()) return std::nullopt;
  return value->as<std::int64_t>();
}

std::optional<bool> FieldTable::get_bool(std::string_view key) const {
  const FieldValue* value = find(key);
  if (value == nullptr || !value->is<bool>()) return std::nullopt;
  return value->as<bool>();
}

bool operator==(const FieldTable& a, const FieldTable& b) {
  if (a.entries_.size() != b.entries_.size()) return false;
  // Keys are unique, so equal sizes plus "every key of a is in b with the same value" suffice.
  return std::all_of(a.entries_.begin(), a.entries_.end(), [&](const FieldTable::Entry& entry) {
    const FieldValue* other = b.find(entry.first);
    return other != nullptr && *other == entry.second;
  });
}

bool operator==(const FieldValue& a, const FieldValue& b) {
  return a.value_ == b.value_;
}

// ---- Encoding -----------------------------------------------------------------------------

namespace {

// Allocation from the pool; rabbitmq-c returns NULL on failure, which we turn into the C++
// convention instead of letting a NULL reach the encoder.
void* pool_alloc(amqp_pool_t* pool, std::size_t size) {
  if (size == 0) return nullptr;
  void* memory = amqp_pool_alloc(pool, size);
  if (memory == nullptr) throw std::bad_alloc();
  return memory;
}

amqp_bytes_t pool_bytes(amqp_pool_t* pool, std::string_view text) {
  amqp_bytes_t bytes;
  bytes.len = text.size();
  bytes.bytes = pool_alloc(pool, text.size());
  if (!text.empty()) std::memcpy(bytes.bytes, text.data(), text.size());
  return bytes;
}

void encode_value(amqp_pool_t* pool, const FieldValue& value, amqp_field_value_t* out);

void encode_table(amqp_pool_t* pool, const FieldTable& table, amqp_table_t* out) {
  out->num_entries = static_cast<int>(table.size());
  out->entries =
      static_cast<amqp_table_entry_t*>(pool_alloc(pool, sizeof(amqp_table_entry_t) * table.size()));
  int i = 0;
  for (const auto& [key, value] : table) {
    // Keys are AMQP short strings; rabbitmq-c would fail the whole frame later with a vaguer
    // error, so say which key is wrong here.
    if (key.size() > 255) {
      throw std::invalid_argument(
          "AMQP field table key longer than 255 bytes: " + key.substr(0, 64) + "...");
    }
    amqp_table_entry_t* entry = &out->entries[i++];
    entry->key = pool_bytes(pool, key);
    encode_value(pool, value, &entry->value);
  }
}

void encode_value(amqp_pool_t* pool, const FieldValue& value, amqp_field_value_t* out) {
  std::memset(out, 0, sizeof(*out));
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          out->kind = AMQP_FIELD_KIND_VOID;
        } else if constexpr (std::is_same_v<T, bool>) {
          out->kind = AMQP_FIELD_KIND_BOOLEAN;
          out->value.boolean = v ? 1 : 0;
        } else if constexpr (std::is_same_v<T, std::int64_t>) {
          out->kind = AMQP_FIELD_KIND_I64;
          out->value.i64 = v;
        } else if constexpr (std::is_same_v<T, double>) {
          out->kind = AMQP_FIELD_KIND_F64;
          out->value.f64 = v;
        } else if constexpr (std::is_same_v<T, std::string>) {
          out->kind = AMQP_FIELD_KIND_UTF8;
          out->value.bytes = pool_bytes(pool, v);
        } else if constexpr (std::is_same_v<T, Timestamp>) {
          out->kind = AMQP_FIELD_KIND_TIMESTAMP;
          out->value.u64 = v.seconds;
        } else if constexpr (std::is_same_v<T, FieldTable>) {
          out->kind = AMQP_FIELD_KIND_TABLE;
          encode_table(pool, v, &out->value.table);
        } else if constexpr (std::is_same_v<T, FieldArray>) {
          out->kind = AMQP_FIELD_KIND_ARRAY;
          out->value.array.num_entries = static_cast<int>(v.size());
          out->value.array.entries = static_cast<amqp_field_value_t*>(
              pool_alloc(pool, sizeof(amqp_field_value_t) * v.size()));
          for (std::size_t i = 0; i < v.size(); ++i) {
            encode_value(pool, v[i], &out->value.array.entries[i]);
          }
        }
      },
      value.variant());
}

std::string copy_bytes(const amqp_bytes_t& bytes) {
  if (bytes.len == 0 || bytes.bytes == nullptr) return {};
  return std::string(static_cast<const char*>(bytes.bytes), bytes.len);
}

}  // namespace

EncodedTable::EncodedTable(const FieldTable& table) : table_{0, nullptr} {
  // 4 KiB pages: a typical header table fits in one.
  init_amqp_pool(&pool_, 4096);
  try {
    encode_table(&pool_, table, &table_);
  } catch (...) {
    empty_amqp_pool(&pool_);
    throw;
  }
}

EncodedTable::~EncodedTable() {
  empty_amqp_pool(&pool_);
}

// ---- Decoding -----------------------------------------------------------------------------

FieldValue decode_value(const amqp_field_value_t& value) {
  switch (value.kind) {
    case AMQP_FIELD_KIND_BOOLEAN:
      return FieldValue(value.value.boolean != 0);
    case AMQP_FIELD_KIND_I8:
      return FieldValue(value.value.i8);
    case AMQP_FIELD_KIND_U8:
      return FieldValue(value.value.u8);
    case AMQP_FIELD_KIND_I16:
      return FieldValue(value.value.i16);
    case AMQP_FIELD_KIND_U16:
      return FieldValue(value.value.u16);
    case AMQP_FIELD_KIND_I32:
      return FieldValue(value.value.i32);
    case AMQP_FIELD_KIND_U32:
      return FieldValue(value.value.u32);
    case AMQP_FIELD_KIND_I64:
      return FieldValue(value.value.i64);
    case AMQP_FIELD_KIND_U64:
      return FieldValue(static_cast<std::int64_t>(value.value.u64));
    case AMQP_FIELD_KIND_F32:
      return FieldValue(static_cast<double>(value.value.f32));
    case AMQP_FIELD_KIND_F64:
      return FieldValue(value.value.f64);
    case AMQP_FIELD_KIND_DECIMAL:
      return FieldValue(static_cast<double>(value.value.decimal.value) /
                        std::pow(10.0, value.value.decimal.decimals));
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
      return FieldValue(copy_bytes(value.value.bytes));
    case AMQP_FIELD_KIND_TIMESTAMP:
      return FieldValue(Timestamp{value.value.u64});
    case AMQP_FIELD_KIND_TABLE:
      return FieldValue(decode_table(value.value.table));
    case AMQP_FIELD_KIND_ARRAY: {
      FieldArray array;
      array.reserve(static_cast<std::size_t>(std::max(0, value.value.array.num_entries)));
      for (int i = 0; i < value.value.array.num_entries; ++i) {
        array.push_back(decode_value(value.value.array.entries[i]));
      }
      return FieldValue(std::move(array));
    }
    case AMQP_FIELD_KIND_VOID:
    default:
      // rabbitmq-c's decoder rejects unknown kinds, so default only covers VOID in practice.
      return FieldValue();
  }
}

FieldTable decode_table(const amqp_table_t& table) {
  FieldTable result;
  for (int i = 0; i < table.num_entries; ++i) {
    const amqp_table_entry_t& entry = table.entries[i];
    result.set(copy_bytes(entry.key), decode_value(entry.value));
  }
  return result;
}

// ---- JSON ---------------------------------------------------------------------------------

void to_json(nlohmann::json& j, const FieldValue& value) {
  std::visit(
      [&](const auto& v) {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>) {
          j = nullptr;
        } else if constexpr (std::is_same_v<T, Timestamp>) {
          j = v.seconds;
        } else if constexpr (std::is_same_v<T, FieldTable>) {
          to_json(j, v);
        } else if constexpr (std::is_same_v<T, FieldArray>) {
          j = nlohmann::json::array();
          for (const auto& element : v) {
            nlohmann::json item;
            to_json(item, element);
            j.push_back(std::move(item));
          }
        } else {
          j = v;
        }
      },
      value.variant());
}

void to_json(nlohmann::json& j, const FieldTable& table) {
  j = nlohmann::json::object();
  for (const auto& [key, value] : table) {
    nlohmann::json item;
    to_json(item, value);
    j[key] = std::move(item);
  }
}

namespace {

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::ostream& operator<<(std::ostream& out, const FieldValue& value) {
  nlohmann::json j;
  to_json(j, value);
  return out << dump(j);
}

std::ostream& operator<<(std::ostream& out, const FieldTable& table) {
  nlohmann::json j;
  to_json(j, table);
  return out << dump(j);
}

}  // namespace warren::amqp
