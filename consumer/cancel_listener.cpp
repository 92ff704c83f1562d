// See cancel_listener.h.
#include "consumer/cancel_listener.h"

#include <pqxx/pqxx>

#include "consumer/event_loop.h"
#include "shared/db/connection_pool.h"
#include "shared/db/job_store.h"
#include "shared/logging.h"

namespace warren::consumer {
namespace {

// await_notification() returns at least this often, so stop() is honoured quickly.
constexpr long kWaitMicroseconds = 250'000;
constexpr auto kReconnectDelay = std::chrono::seconds(1);

class CancelReceiver : public pqxx::notification_receiver {
 public:
  CancelReceiver(pqxx::connection_base& connection, std::function<void(const std::string&)> on)
      : pqxx::notification_receiver(connection, db::kCancelChannel), on_(std::move(on)) {}
  void operator()(const std::string& payload, int /*backend_pid*/) override { on_(payload); }

 private:
  std::function<void(const std::string&)> on_;
};

}  // namespace

CancelListener::CancelListener(std::string database_url, Mailbox& mailbox,
                               std::function<void(const std::string&)> on_cancel)
    : database_url_(std::move(database_url)), mailbox_(mailbox), on_cancel_(std::move(on_cancel)) {}

CancelListener::~CancelListener() {
  stop();
}

void CancelListener::start() {
  thread_ = std::thread([this] { run(); });
}

void CancelListener::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void CancelListener::post(const std::string& job_id) {
  mailbox_.post([on_cancel = on_cancel_, job_id] { on_cancel(job_id); });
}

void CancelListener::run() {
  while (!stopping_) {
    try {
      auto connection = db::connect(database_url_);
      CancelReceiver receiver(*connection, [this](const std::string& id) { post(id); });
      {
        // Cancels that happened while we were not listening.
        pqxx::read_transaction tx(*connection);
        for (const auto& row :
             tx.exec("SELECT id::text FROM jobs WHERE status = 'running' AND cancel_requested")) {
          post(row[0].as<std::string>());
        }
      }
      while (!stopping_) connection->await_notification(0, kWaitMicroseconds);
    } catch (const std::exception& error) {
      if (stopping_) break;
      log::warn("cancel listener lost the database, reconnecting", {{"error", error.what()}});
      for (auto waited = std::chrono::milliseconds(0); waited < kReconnectDelay && !stopping_;
           waited += std::chrono::milliseconds(100)) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
}

}  // namespace warren::consumer
