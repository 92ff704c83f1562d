// TLS to the broker and the database (issue 5, RUNNING.md: "amqps:// for TLS", "sslmode
// honoured"). The test stack's RabbitMQ also listens for AMQP over TLS and its Postgres accepts
// TLS, both with a certificate for 127.0.0.1/localhost signed by a CA the stack made for itself
// (scripts/lib/stack.sh; WARREN_TEST_TLS_CA, WARREN_TEST_AMQPS_PORT).
//
// - A producer and a consumer trusting that CA run a job end to end over verified TLS, and the
//   servers themselves say their connections are TLS (RabbitMQ's /api/connections, Postgres's
//   pg_stat_ssl); once more with sslmode=require (encrypted, not verified).
// - Fail closed: with a CA the test makes itself (openssl), which did not sign the servers'
//   certificate, nothing connects, nothing falls back to plaintext, and the producer, the
//   consumer and warrenctl say in their logs or errors that certificate verification failed.
// - The host check (TlsHostCheck): a certificate from a trusted CA but for another address or
//   name is refused before any AMQP byte (credentials included) is sent.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "shared/amqp/amqp_connection.h"
#include "shared/amqp/amqp_error.h"
#include "support/jobs.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Percent-encodes what may not appear as such in a URL's query value (paths keep their '/').
std::string url_encode(const std::string& text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', hex[c >> 4], hex[c & 15]};
    }
  }
  return out;
}

class Tls : public IntegrationTest {
 protected:
  static std::string stack_ca() { return test_env("WARREN_TEST_TLS_CA"); }

  // The test broker's URL (its user, password and vhost: amqp://u:p@host:port/vhost) as
  // amqps://, on `port` (by default its TLS port), trusting `ca`.
  static std::string amqps_url(const std::string& ca, std::string port = "") {
    if (port.empty()) port = test_env("WARREN_TEST_AMQPS_PORT");
    const std::string plain = test_env("WARREN_TEST_AMQP_URL");
    const auto authority = plain.find("://") + 3;
    const auto port_colon = plain.find(':', plain.rfind('@'));
    const auto path = plain.find('/', port_colon);
    return "amqps://" + plain.substr(authority, port_colon + 1 - authority) + port +
           plain.substr(path) + "?cacertfile=" + url_encode(ca);
  }

  static std::string plain_amqp_port() {
    const std::string plain = test_env("WARREN_TEST_AMQP_URL");
    const auto port_colon = plain.find(':', plain.rfind('@'));
    return plain.substr(port_colon + 1, plain.find('/', port_colon) - port_colon - 1);
  }

  std::string database_url(const std::string& query) const {
    return database_->url() + "?" + query;
  }

  // A CA of the test's own, in a fresh directory: valid, but it signed neither server's
  // certificate.
  std::string make_wrong_ca() {
    const std::string dir = test_env("WARREN_TEST_STACK_DIR") + "/wrong-ca-" + prefix_;
    std::filesystem::create_directories(dir);
    auto made =
        run_command("/usr/bin/env",  // (run_command does not search PATH)
                    {"openssl", "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-noenc", "-keyout", dir + "/ca.key", "-out",
                     dir + "/ca.pem", "-days", "2", "-subj", "/CN=Warren TLS test wrong CA",
                     "-addext", "basicConstraints=critical,CA:TRUE"});
    if (made.exit_code != 0) throw std::runtime_error("openssl failed: " + made.err);
    return dir + "/ca.pem";
  }

  // The broker's connections, as its management API lists them.
  static json broker_connections() {
    const std::string management = test_env("WARREN_TEST_RABBITMQ_MANAGEMENT_URL");
    httplib::Client admin(management.substr(0, management.find("://") + 3) +
                          management.substr(management.find('@') + 1));
    admin.set_basic_auth("guest", "guest");
    auto listed = admin.Get("/api/connections?columns=name,ssl,port,client_properties");
    if (!listed || listed->status != 200) throw std::runtime_error("GET /api/connections failed");
    return json::parse(listed->body);
  }

  // The broker connections named `name` (the connection_name a Warren process gives).
  static std::vector<json> connections_named(const std::string& name) {
    std::vector<json> found;
    for (const auto& c : broker_connections()) {
      if (c.contains("client_properties") &&
          c["client_properties"].value("connection_name", "") == name) {
        found.push_back(c);
      }
    }
    return found;
  }

  // Every connection to this test's database but the one asking, with whether it is TLS.
  json database_sessions() {
    return query_json(
        "SELECT a.pid, a.usename, s.ssl, s.version FROM pg_stat_activity a "
        "JOIN pg_stat_ssl s USING (pid) WHERE a.datname = current_database() "
        "AND a.backend_type = 'client backend' AND a.pid <> pg_backend_pid()");
  }

  // A producer and a consumer on `amqp_url` and `database_url` run one job to the end; then
  // both servers are asked whether those connections are TLS.
  void run_job_over_tls(const std::string& amqp_url, const std::string& db_url) {
    const std::map<std::string, std::string> env = {{"WARREN_AMQP_URL", amqp_url},
                                                    {"WARREN_DATABASE_URL", db_url}};
    start_producer(env);
    auto& consumer = start_consumer(env);
    ASSERT_TRUE(wait_until(
        [&] {
          auto ready = api()->Get("/readyz");
          return ready && ready->status == 200;
        },
        30s))
        << producer_->process().log();

    const std::string id = submit_job(*api(), {{"type", "noop"}, {"payload", json::object()}});
    ASSERT_TRUE(wait_until(
        [&] {
          return query_value("SELECT status FROM jobs WHERE id = '" + id + "'") == "succeeded";
        },
        30s))
        << consumer.process().log();

    // RabbitMQ: the producer's relay, the consumer and its dead-letter recorder are connected,
    // each over TLS on the TLS port. (The test's own helper connections use the plain port.)
    const std::vector<std::string> names = {"warren-producer outbox relay",
                                            "warren-consumer " + consumer.worker_id(),
                                            "warren-dead-letter-recorder " + consumer.worker_id()};
    for (const auto& name : names) {
      std::vector<json> found;
      ASSERT_TRUE(wait_until(
          [&] {
            found = connections_named(name);
            return !found.empty();
          },
          15s, 200ms))
          << "no broker connection named '" << name << "': " << broker_connections().dump();
      for (const auto& c : found) {
        EXPECT_EQ(c.value("ssl", false), true) << name << ": " << c.dump();
        EXPECT_EQ(std::to_string(c.value("port", 0)), test_env("WARREN_TEST_AMQPS_PORT"))
            << name << ": " << c.dump();
      }
    }

    // Postgres: every session of this test's database (the producer's pool, relay and batcher,
    // the consumer's recorder and cancel listener) is TLS.
    const json sessions = database_sessions();
    EXPECT_GE(sessions.size(), 3u) << sessions.dump();
    for (const auto& s : sessions) {
      EXPECT_EQ(s["ssl"], true) << "a plaintext database session: " << sessions.dump();
      EXPECT_EQ(s["version"].get<std::string>().rfind("TLSv1.", 0), 0u) << s.dump();
    }
  }
};

TEST_F(Tls, JobRunsOverVerifiedTlsToBrokerAndDatabase) {
  run_job_over_tls(amqps_url(stack_ca()),
                   database_url("sslmode=verify-full&sslrootcert=" + url_encode(stack_ca())));
}

TEST_F(Tls, JobRunsWithSslmodeRequire) {
  // sslmode=require encrypts without checking the certificate (libpq looks for a CA only in
  // ~/.postgresql/root.crt, which this machine has not).
  const char* home = std::getenv("HOME");
  ASSERT_FALSE(home != nullptr &&
               std::filesystem::exists(std::string(home) + "/.postgresql/root.crt"));
  run_job_over_tls(amqps_url(stack_ca()), database_url("sslmode=require"));
}

TEST_F(Tls, BrokerConnectionWithTheRightCaWorksByIpAndByName) {
  // 127.0.0.1 is matched against the certificate's IP entry, localhost against its DNS entry
  // (rabbitmq-c 0.11 alone refused the IP form: see configure_tls in amqp_connection.cpp).
  auto by_ip = amqp::AmqpConnection::open(amqps_url(stack_ca()), "warren tls test by ip");
  EXPECT_TRUE(by_ip.check_exchange("amq.direct"));
  std::string by_name_url = amqps_url(stack_ca());
  by_name_url.replace(by_name_url.find("@127.0.0.1:"), 11, "@localhost:");
  auto by_name = amqp::AmqpConnection::open(by_name_url, "warren tls test by name");
  EXPECT_TRUE(by_name.check_exchange("amq.direct"));
}

TEST_F(Tls, BrokerConnectionWithAWrongCaIsRefusedClearly) {
  const std::string wrong_ca = make_wrong_ca();
  try {
    amqp::AmqpConnection::open(amqps_url(wrong_ca), "warren tls test wrong ca");
    FAIL() << "connected to the broker with a CA that did not sign its certificate";
  } catch (const amqp::AmqpError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("TLS certificate verification failed"), std::string::npos) << message;
    // OpenSSL's reason (the broker sends its CA along, which the wrong CA cannot vouch for).
    EXPECT_NE(message.find("self-signed certificate in certificate chain"), std::string::npos)
        << message;
    EXPECT_NE(message.find(wrong_ca), std::string::npos) << message;
    EXPECT_EQ(message.find(":guest@"), std::string::npos) << "the password leaked: " << message;
  }
  // TLS asked of the plain port fails too, saying why, rather than talking plaintext.
  try {
    amqp::AmqpConnection::open(amqps_url(stack_ca(), plain_amqp_port()),
                               "warren tls test plain port");
    FAIL() << "an amqps:// URL connected to the plain AMQP port";
  } catch (const amqp::AmqpError& error) {
    EXPECT_NE(std::string(error.what()).find("SSL handshake failed"), std::string::npos)
        << error.what();
  }
}

TEST_F(Tls, ProducerAndConsumerRefuseABrokerTheirCaDidNotSign) {
  const std::string wrong_ca = make_wrong_ca();
  const std::map<std::string, std::string> env = {
      {"WARREN_AMQP_URL", amqps_url(wrong_ca)},
      {"WARREN_DATABASE_URL",
       database_url("sslmode=verify-full&sslrootcert=" + url_encode(stack_ca()))}};
  start_producer(env);
  auto& consumer = start_consumer(env, /*wait_ready=*/false);

  const std::string verification = "TLS certificate verification failed";
  ASSERT_TRUE(wait_until(
      [&] {
        return producer_->process().log().find(verification) != std::string::npos &&
               consumer.process().log().find(verification) != std::string::npos;
      },
      20s))
      << "producer log:\n"
      << producer_->process().log() << "\nconsumer log:\n"
      << consumer.process().log();
  // They keep trying (the CA may be fixed without a restart), and stay not ready meanwhile.
  std::this_thread::sleep_for(2s);
  EXPECT_TRUE(producer_->process().running());
  EXPECT_TRUE(consumer.process().running());
  EXPECT_FALSE(consumer.ready());
  auto ready = api()->Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503) << ready->body;
  EXPECT_EQ(json::parse(ready->body).value("broker", ""), "down") << ready->body;
  // Nothing reached the broker, on either port.
  for (const auto& name :
       {std::string("warren-producer outbox relay"), "warren-consumer " + consumer.worker_id(),
        "warren-dead-letter-recorder " + consumer.worker_id()}) {
    EXPECT_TRUE(connections_named(name).empty()) << name << " is connected";
  }
  // The producer still accepts jobs (the outbox keeps them); none is published.
  const std::string id = submit_job(*api(), {{"type", "noop"}, {"payload", json::object()}});
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(query_value("SELECT status FROM jobs WHERE id = '" + id + "'"), "queued");

  EXPECT_EQ(consumer.stop(), 0) << consumer.process().log();
  EXPECT_EQ(producer_->stop(), 0) << producer_->process().log();
  const std::string logs = producer_->process().log() + consumer.process().log();
  EXPECT_NE(logs.find("self-signed certificate in certificate chain (trusting cacertfile '" +
                      wrong_ca + "')"),
            std::string::npos)
      << logs;
  EXPECT_EQ(logs.find(":guest@"), std::string::npos) << "the broker password is in the logs";
}

TEST_F(Tls, ProducerConsumerAndWarrenctlRefuseADatabaseTheirCaDidNotSign) {
  const std::string wrong_ca = make_wrong_ca();
  ASSERT_EQ(warrenctl({"migrate"}).exit_code, 0);  // over plain TCP: the schema is there
  const std::map<std::string, std::string> env = {
      {"WARREN_AMQP_URL", amqps_url(stack_ca())},
      {"WARREN_DATABASE_URL",
       database_url("sslmode=verify-full&sslrootcert=" + url_encode(wrong_ca))},
      {"WARREN_STARTUP_WAIT_MS", "1500"}};

  // Both wait WARREN_STARTUP_WAIT_MS for the database, then exit 1 saying why.
  auto env_of = [&](const std::string& health_or_http) {
    auto all = warren_env();
    for (const auto& [k, v] : env) all[k] = v;
    all[health_or_http] = "127.0.0.1:" + std::to_string(free_port());
    return all;
  };
  const std::string dir = test_env("WARREN_TEST_STACK_DIR");
  ChildProcess producer(binary("warren-producer"), {}, env_of("WARREN_HTTP_ADDR"),
                        dir + "/producer-Tls-wrong-db-ca-" + prefix_ + ".log");
  ChildProcess consumer(binary("warren-consumer-test"), {}, env_of("WARREN_HEALTH_ADDR"),
                        dir + "/consumer-Tls-wrong-db-ca-" + prefix_ + ".log");
  ASSERT_TRUE(wait_until([&] { return !producer.running() && !consumer.running(); }, 30s));
  EXPECT_EQ(producer.stop(), 1) << producer.log();
  EXPECT_EQ(consumer.stop(), 1) << consumer.log();
  for (auto* process : {&producer, &consumer}) {
    const std::string log = process->log();
    EXPECT_NE(log.find("certificate verify failed"), std::string::npos) << log;
    EXPECT_EQ(log.find("warren:warren@"), std::string::npos) << "a password is in the log";
  }
  // No session of this database was ever made, encrypted or not.
  EXPECT_EQ(database_sessions().size(), 0u) << database_sessions().dump();

  // warrenctl: one clear error, exit 1, for the database and for the broker.
  auto migrate = warrenctl({"migrate"}, env);
  EXPECT_EQ(migrate.exit_code, 1) << migrate.out << migrate.err;
  EXPECT_NE(migrate.err.find("certificate verify failed"), std::string::npos) << migrate.err;
  auto topology = warrenctl({"topology", "declare"}, {{"WARREN_AMQP_URL", amqps_url(wrong_ca)}});
  EXPECT_EQ(topology.exit_code, 1) << topology.out << topology.err;
  EXPECT_NE(topology.err.find("TLS certificate verification failed"), std::string::npos)
      << topology.err;
  for (const auto& text : {migrate.out + migrate.err, topology.out + topology.err}) {
    EXPECT_EQ(text.find("warren:warren@"), std::string::npos) << text;
    EXPECT_EQ(text.find(":guest@"), std::string::npos) << text;
  }
  // ... and both work with the right CA.
  const std::map<std::string, std::string> right = {
      {"WARREN_AMQP_URL", amqps_url(stack_ca())},
      {"WARREN_DATABASE_URL",
       database_url("sslmode=verify-full&sslrootcert=" + url_encode(stack_ca()))}};
  auto migrated = warrenctl({"migrate", "--status"}, right);
  EXPECT_EQ(migrated.exit_code, 0) << migrated.out << migrated.err;
  auto declared = warrenctl({"topology", "declare"}, right);
  EXPECT_EQ(declared.exit_code, 0) << declared.out << declared.err;
}

// A TLS server for one connection, speaking no AMQP: it completes the handshake with the given
// certificate and keeps the first bytes the client sends after it (an AMQP client's are its
// 8-byte protocol header), then hangs up. Everything it records is read after its thread ends.
class TlsProbeServer {
 public:
  TlsProbeServer(const std::string& certificate, const std::string& key)
      : context_(SSL_CTX_new(TLS_server_method()), SSL_CTX_free) {
    if (!context_ || SSL_CTX_use_certificate_chain_file(context_.get(), certificate.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(context_.get(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
      throw std::runtime_error("TlsProbeServer: cannot load " + certificate);
    }
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(listener_, 1) != 0 ||
        ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      if (listener_ >= 0) ::close(listener_);
      throw std::runtime_error("TlsProbeServer: cannot listen on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~TlsProbeServer() {
    if (thread_.joinable()) thread_.join();
    ::close(listener_);
  }
  TlsProbeServer(const TlsProbeServer&) = delete;
  TlsProbeServer& operator=(const TlsProbeServer&) = delete;

  int port() const { return port_; }

  // Waits for the connection to end; what the client sent after the handshake.
  std::string finish() {
    thread_.join();
    return received_;
  }

 private:
  void serve() {
    pollfd waiting{listener_, POLLIN, 0};
    if (::poll(&waiting, 1, 10000) != 1) return;
    const int connection = ::accept(listener_, nullptr, nullptr);
    if (connection < 0) return;
    const timeval timeout{3, 0};  // the client gives up after 2 s: never wait longer than it
    ::setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    std::unique_ptr<SSL, decltype(&SSL_free)> tls(SSL_new(context_.get()), SSL_free);
    SSL_set_fd(tls.get(), connection);
    if (SSL_accept(tls.get()) == 1) {
      char buffer[64];
      for (int n; received_.size() < 8 && (n = SSL_read(tls.get(), buffer, sizeof(buffer))) > 0;) {
        received_.append(buffer, static_cast<std::size_t>(n));
      }
      SSL_shutdown(tls.get());
    }
    ::close(connection);
  }

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> context_;
  int listener_ = -1;
  int port_ = 0;
  std::string received_;
  std::thread thread_;
};

// The certificate must be for the host in the URL, not just signed by a trusted CA: a TLS server
// of the test's own shows certificates from the test's CA made for other hosts, and the client
// must refuse each before it sends a single AMQP byte (its credentials come a little later).
// The control case, a certificate for the URL's host, gets its protocol header through, so a
// refusal cannot come from a broken test server.
class TlsHostCheck : public Tls {
 protected:
  struct Outcome {
    std::string error;     // the AmqpError's message
    std::string received;  // what the TLS server read from the client after the handshake
  };

  void SetUp() override {
    Tls::SetUp();
    dir_ = test_env("WARREN_TEST_STACK_DIR") + "/host-check-" + prefix_;
    std::filesystem::create_directories(dir_);
    openssl({"req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-noenc", "-keyout", dir_ + "/ca.key", "-out", dir_ + "/ca.pem", "-days", "2", "-subj",
             "/CN=Warren TLS host check CA", "-addext", "basicConstraints=critical,CA:TRUE"});
  }

  void TearDown() override {
    std::filesystem::remove_all(dir_);
    Tls::TearDown();
  }

  // A certificate from the test CA whose only names are `alt_names` (subjectAltName syntax).
  std::string certificate_for(const std::string& name, const std::string& alt_names) {
    const std::string base = dir_ + "/" + name;
    openssl({"req",
             "-x509",
             "-new",
             "-newkey",
             "ec",
             "-pkeyopt",
             "ec_paramgen_curve:prime256v1",
             "-noenc",
             "-keyout",
             base + ".key",
             "-out",
             base + ".pem",
             "-CA",
             dir_ + "/ca.pem",
             "-CAkey",
             dir_ + "/ca.key",
             "-days",
             "2",
             "-subj",
             "/CN=" + name,
             "-addext",
             "subjectAltName=" + alt_names,
             "-addext",
             "basicConstraints=critical,CA:FALSE"});
    return base;
  }

  // Serves `certificate` on a fresh port and connects to it as `url_host` (the password is
  // `secret_`), trusting the test CA.
  Outcome connect_to(const std::string& certificate, const std::string& url_host) {
    TlsProbeServer server(certificate + ".pem", certificate + ".key");
    Outcome outcome;
    try {
      amqp::AmqpConnection::open(
          "amqps://guest:" + secret_ + "@" + url_host + ":" + std::to_string(server.port()) +
              "/%2f?connection_timeout=2000&cacertfile=" + url_encode(dir_ + "/ca.pem"),
          "warren tls host check");
      ADD_FAILURE() << "an AMQP connection to a server that speaks no AMQP succeeded";
    } catch (const amqp::AmqpError& error) {
      outcome.error = error.what();
    }
    outcome.received = server.finish();
    return outcome;
  }

  void expect_refused(const Outcome& outcome, const std::string& reason) {
    EXPECT_NE(outcome.error.find("TLS certificate verification failed: " + reason),
              std::string::npos)
        << outcome.error;
    EXPECT_EQ(outcome.received, "") << "the client spoke AMQP to a server it should have refused";
    EXPECT_EQ(outcome.received.find(secret_), std::string::npos) << outcome.received;
    EXPECT_EQ(outcome.error.find(secret_), std::string::npos) << outcome.error;
  }

  const std::string secret_ = "host-check-" + random_suffix();

 private:
  static void openssl(std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    const auto made = run_command("/usr/bin/env", args);
    if (made.exit_code != 0) throw std::runtime_error("openssl failed: " + made.err);
  }

  std::string dir_;
};

TEST_F(TlsHostCheck, ACertificateForTheUrlsAddressGetsThroughTheHandshake) {
  const auto outcome = connect_to(certificate_for("right-ip", "IP:127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(outcome.error.find("verification failed"), std::string::npos) << outcome.error;
  EXPECT_EQ(outcome.received, std::string("AMQP\0\0\x09\x01", 8)) << "no AMQP protocol header";
}

TEST_F(TlsHostCheck, ACertificateForAnotherAddressIsRefused) {
  expect_refused(connect_to(certificate_for("other-ip", "IP:127.0.0.2"), "127.0.0.1"),
                 "IP address mismatch");
}

TEST_F(TlsHostCheck, ACertificateWithOnlyANameIsRefusedForAnAddress) {
  // The certificate's DNS name is not matched against an IP address in the URL (RFC 6125).
  expect_refused(connect_to(certificate_for("name-only", "DNS:other.example"), "127.0.0.1"),
                 "IP address mismatch");
}

TEST_F(TlsHostCheck, ACertificateForAnotherNameIsRefused) {
  expect_refused(connect_to(certificate_for("other-name", "DNS:other.example"), "localhost"),
                 "hostname mismatch");
}

}  // namespace
}  // namespace warren::test
