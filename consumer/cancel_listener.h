// Hears about cancellations of running jobs within a second (MESSAGING.md "Cancellation").
//
// Cancelling a running job (POST /v1/jobs/{id}/cancel, `warrenctl jobs cancel`) sets the job's
// cancel_requested and sends a Postgres NOTIFY on db::kCancelChannel in the same transaction.
// This thread LISTENs on its own connection and posts each job id to the loop, which stops the
// handler if it runs that job and ignores the id otherwise. NOTIFY is used instead of a fanout
// exchange because it is transactional (sent only if the cancel commits) and reaches consumers
// from anything that writes the database, with the same latency.
//
// Notifications sent while this connection was down are lost, so after every (re)connect the
// listener also reports every running job whose cancel is pending.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace warren::consumer {

class Mailbox;

class CancelListener {
 public:
  // on_cancel runs on the loop thread.
  CancelListener(std::string database_url, Mailbox& mailbox,
                 std::function<void(const std::string& job_id)> on_cancel);
  ~CancelListener();
  CancelListener(const CancelListener&) = delete;
  CancelListener& operator=(const CancelListener&) = delete;

  void start();
  void stop();

 private:
  void run();
  void post(const std::string& job_id);

  const std::string database_url_;
  Mailbox& mailbox_;
  std::function<void(const std::string&)> on_cancel_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace warren::consumer
