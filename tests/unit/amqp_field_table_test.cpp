// Unit tests of the AMQP field-table layer (shared/amqp/field_table.h): the C++ table type,
// its conversion to and from rabbitmq-c's amqp_table_t, and the AMQP wire format through
// rabbitmq-c's own encoder/decoder, so no broker is needed. Also the URL redaction helper of
// amqp_connection.h, the one piece of the connection code that runs without a broker.
#include <gtest/gtest.h>

#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shared/amqp/amqp_connection.h"
#include "shared/amqp/field_table.h"

namespace warren::amqp {
namespace {

FieldTable sample_table() {
  return FieldTable{
      {"s", "text"},
      {"empty", ""},
      {"binary", std::string("a\0b", 3)},
      {"i", 42},
      {"negative", std::int64_t{-9000000000}},
      {"yes", true},
      {"no", false},
      {"d", 2.5},
      {"ts", Timestamp{1700000000}},
      {"nothing", FieldValue()},
      {"nested", FieldTable{{"inner", "x"}, {"deeper", FieldTable{{"n", 1}}}}},
      {"array", FieldArray{1, "two", true, FieldTable{{"k", "v"}}, FieldArray{3}}},
  };
}

// Serializes with rabbitmq-c's encoder and parses back with its decoder: what the broker would
// see and what we would get from it.
FieldTable wire_round_trip(const FieldTable& table) {
  EncodedTable encoded(table);
  std::vector<char> buffer(64 * 1024);
  amqp_bytes_t bytes{buffer.size(), buffer.data()};
  std::size_t offset = 0;
  amqp_table_t input = encoded.get();
  EXPECT_EQ(amqp_encode_table(bytes, &input, &offset), AMQP_STATUS_OK);
  bytes.len = offset;

  amqp_pool_t pool;
  init_amqp_pool(&pool, 4096);
  amqp_table_t output;
  std::size_t read_offset = 0;
  EXPECT_EQ(amqp_decode_table(bytes, &pool, &output, &read_offset), AMQP_STATUS_OK);
  EXPECT_EQ(read_offset, offset);
  FieldTable result = decode_table(output);
  empty_amqp_pool(&pool);
  return result;
}

TEST(AmqpFieldTable, SetReplacesAndKeepsOrder) {
  FieldTable table{{"a", 1}, {"b", 2}};
  table.set("a", "one");
  table.set("c", 3);
  ASSERT_EQ(table.size(), 3u);
  std::vector<std::string> keys;
  for (const auto& [key, value] : table) keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(table.get_string("a"), "one");
  EXPECT_EQ(table.get_int("b"), 2);
  EXPECT_FALSE(table.get_int("a").has_value());  // a string now
  EXPECT_TRUE(table.erase("b"));
  EXPECT_FALSE(table.erase("b"));
  EXPECT_FALSE(table.contains("b"));
  EXPECT_EQ(table.find("missing"), nullptr);
}

TEST(AmqpFieldTable, EqualityIgnoresKeyOrder) {
  EXPECT_EQ((FieldTable{{"a", 1}, {"b", FieldTable{{"x", 1}, {"y", 2}}}}),
            (FieldTable{{"b", FieldTable{{"y", 2}, {"x", 1}}}, {"a", 1}}));
  EXPECT_NE((FieldTable{{"a", 1}}), (FieldTable{{"a", 2}}));
  EXPECT_NE((FieldTable{{"a", 1}}), (FieldTable{{"a", 1}, {"b", 1}}));
  EXPECT_NE((FieldTable{{"a", 1}}), (FieldTable{{"b", 1}}));
  // Arrays are ordered.
  EXPECT_NE((FieldTable{{"a", FieldArray{1, 2}}}), (FieldTable{{"a", FieldArray{2, 1}}}));
  std::ostringstream printed;
  printed << FieldTable{{"a", 1}};
  EXPECT_EQ(printed.str(), R"({"a":1})");
}

TEST(AmqpFieldTable, InitializerListDeduplicatesKeys) {
  FieldTable table{{"k", 1}, {"k", 2}};
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.get_int("k"), 2);
}

TEST(AmqpFieldTable, ValueConstructorsPickTheRightKind) {
  EXPECT_TRUE(FieldValue("literal").is<std::string>());  // not bool
  EXPECT_TRUE(FieldValue(true).is<bool>());
  EXPECT_TRUE(FieldValue(7).is<std::int64_t>());
  EXPECT_TRUE(FieldValue(std::uint16_t{7}).is<std::int64_t>());
  EXPECT_TRUE(FieldValue(1.5f).is<double>());
  EXPECT_TRUE(FieldValue().is_void());
  EXPECT_EQ(FieldValue(7).as<std::int64_t>(), 7);
  EXPECT_THROW((void)FieldValue(7).as<std::string>(), std::bad_variant_access);
  EXPECT_EQ(FieldValue(7).get_if<std::string>(), nullptr);
}

TEST(AmqpFieldTable, EncodeDecodeRoundTripInMemory) {
  const FieldTable table = sample_table();
  EncodedTable encoded(table);
  EXPECT_EQ(encoded.get().num_entries, static_cast<int>(table.size()));
  EXPECT_EQ(decode_table(encoded.get()), table);
}

TEST(AmqpFieldTable, WireRoundTripIsExact) {
  const FieldTable table = sample_table();
  EXPECT_EQ(wire_round_trip(table), table);
  EXPECT_EQ(wire_round_trip(FieldTable{}), FieldTable{});
}

TEST(AmqpFieldTable, EncodesWithTheKindsRabbitMqExpects) {
  EncodedTable encoded(FieldTable{{"i", 20}, {"s", "quorum"}, {"t", Timestamp{5}}, {"b", true}});
  const amqp_table_t& t = encoded.get();
  ASSERT_EQ(t.num_entries, 4);
  EXPECT_EQ(t.entries[0].value.kind, AMQP_FIELD_KIND_I64);  // 'l', valid for x-delivery-limit
  EXPECT_EQ(t.entries[0].value.value.i64, 20);
  EXPECT_EQ(t.entries[1].value.kind, AMQP_FIELD_KIND_UTF8);
  EXPECT_EQ(std::string(static_cast<char*>(t.entries[1].value.value.bytes.bytes),
                        t.entries[1].value.value.bytes.len),
            "quorum");
  EXPECT_EQ(t.entries[2].value.kind, AMQP_FIELD_KIND_TIMESTAMP);
  EXPECT_EQ(t.entries[3].value.kind, AMQP_FIELD_KIND_BOOLEAN);
}

TEST(AmqpFieldTable, DecodingWidensOtherWireKinds) {
  std::vector<amqp_table_entry_t> entries(11);
  const char* keys[] = {"i8", "u8", "i16", "u16", "i32", "u32", "u64", "f32", "dec", "x", "v"};
  for (std::size_t i = 0; i < entries.size(); ++i) {
    std::memset(&entries[i], 0, sizeof(entries[i]));
    entries[i].key = amqp_cstring_bytes(keys[i]);
  }
  entries[0].value.kind = AMQP_FIELD_KIND_I8;
  entries[0].value.value.i8 = -5;
  entries[1].value.kind = AMQP_FIELD_KIND_U8;
  entries[1].value.value.u8 = 250;
  entries[2].value.kind = AMQP_FIELD_KIND_I16;
  entries[2].value.value.i16 = -30000;
  entries[3].value.kind = AMQP_FIELD_KIND_U16;
  entries[3].value.value.u16 = 60000;
  entries[4].value.kind = AMQP_FIELD_KIND_I32;
  entries[4].value.value.i32 = -2000000000;
  entries[5].value.kind = AMQP_FIELD_KIND_U32;
  entries[5].value.value.u32 = 4000000000u;
  entries[6].value.kind = AMQP_FIELD_KIND_U64;
  entries[6].value.value.u64 = 123;
  entries[7].value.kind = AMQP_FIELD_KIND_F32;
  entries[7].value.value.f32 = 0.5f;
  entries[8].value.kind = AMQP_FIELD_KIND_DECIMAL;
  entries[8].value.value.decimal.decimals = 2;
  entries[8].value.value.decimal.value = 314;
  entries[9].value.kind = AMQP_FIELD_KIND_BYTES;
  entries[9].value.value.bytes = amqp_cstring_bytes("raw");
  entries[10].value.kind = AMQP_FIELD_KIND_VOID;
  amqp_table_t raw{static_cast<int>(entries.size()), entries.data()};

  const FieldTable table = decode_table(raw);
  EXPECT_EQ(table.get_int("i8"), -5);
  EXPECT_EQ(table.get_int("u8"), 250);
  EXPECT_EQ(table.get_int("i16"), -30000);
  EXPECT_EQ(table.get_int("u16"), 60000);
  EXPECT_EQ(table.get_int("i32"), -2000000000);
  EXPECT_EQ(table.get_int("u32"), 4000000000);
  EXPECT_EQ(table.get_int("u64"), 123);
  EXPECT_DOUBLE_EQ(table.find("f32")->as<double>(), 0.5);
  EXPECT_DOUBLE_EQ(table.find("dec")->as<double>(), 3.14);
  EXPECT_EQ(table.get_string("x"), "raw");
  EXPECT_TRUE(table.find("v")->is_void());
}

TEST(AmqpFieldTable, XDeathShapeDecodes) {
  // The shape RabbitMQ gives a dead-lettered message: an array of tables with a timestamp.
  const FieldTable headers{
      {"x-death", FieldArray{FieldTable{{"count", 1},
                                        {"reason", "rejected"},
                                        {"queue", "warren.q.default"},
                                        {"time", Timestamp{1700000000}},
                                        {"exchange", "warren.jobs"},
                                        {"routing-keys", FieldArray{"default"}}}}},
  };
  const FieldTable decoded = wire_round_trip(headers);
  const auto& deaths = decoded.find("x-death")->as<FieldArray>();
  ASSERT_EQ(deaths.size(), 1u);
  const auto& death = deaths[0].as<FieldTable>();
  EXPECT_EQ(death.get_string("reason"), "rejected");
  EXPECT_EQ(death.find("time")->as<Timestamp>().seconds, 1700000000u);
}

TEST(AmqpFieldTable, RejectsKeysLongerThanAShortString) {
  EXPECT_THROW(EncodedTable(FieldTable{{std::string(256, 'k'), 1}}), std::invalid_argument);
  EXPECT_NO_THROW(EncodedTable(FieldTable{{std::string(255, 'k'), 1}}));
}

TEST(AmqpFieldTable, ToJson) {
  const nlohmann::json j = FieldTable{{"s", "x"},
                                      {"i", 3},
                                      {"b", true},
                                      {"v", FieldValue()},
                                      {"ts", Timestamp{9}},
                                      {"a", FieldArray{1, "y"}},
                                      {"t", FieldTable{{"n", 1.5}}}};
  EXPECT_EQ(j, nlohmann::json::parse(
                   R"({"s":"x","i":3,"b":true,"v":null,"ts":9,"a":[1,"y"],"t":{"n":1.5}})"));
}

TEST(AmqpUrlRedaction, HidesThePassword) {
  EXPECT_EQ(redact_amqp_url("amqp://guest:s3cret@localhost:5672/%2f"),
            "amqp://guest:***@localhost:5672/%2f");
  EXPECT_EQ(redact_amqp_url("amqps://u:p@h/v?cacertfile=/x"), "amqps://u:***@h/v?cacertfile=/x");
  // Unencoded '@' or '/' inside the password: hide up to the last '@'.
  EXPECT_EQ(redact_amqp_url("amqp://u:pa@ss/w@h/v"), "amqp://u:***@h/v");
  EXPECT_EQ(redact_amqp_url("amqp://u:pa/ss@h"), "amqp://u:***@h");
  // Nothing to hide.
  EXPECT_EQ(redact_amqp_url("amqp://localhost:5672/%2f"), "amqp://localhost:5672/%2f");
  EXPECT_EQ(redact_amqp_url("amqp://user@localhost"), "amqp://user@localhost");
  EXPECT_EQ(redact_amqp_url("not a url"), "not a url");
}

TEST(AmqpUrlRedaction, BadUrlErrorDoesNotLeakThePassword) {
  try {
    (void)AmqpConnection::open("amqp://user:hunter2-secret@host:notaport/", "test");
    FAIL() << "expected AmqpError";
  } catch (const AmqpError& error) {
    EXPECT_EQ(std::string(error.what()).find("hunter2-secret"), std::string::npos) << error.what();
    EXPECT_NE(std::string(error.what()).find("invalid AMQP URL"), std::string::npos);
    EXPECT_FALSE(error.connection_lost());
  }
  EXPECT_THROW((void)AmqpConnection::open("amqp://u:p@h/?bogus=1", "test"), AmqpError);
  EXPECT_THROW((void)AmqpConnection::open("amqp://u:p@h/?cacertfile=/x", "test"), AmqpError);
}

}  // namespace
}  // namespace warren::amqp
