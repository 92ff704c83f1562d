// See submit_batcher.h.
#include "producer/submit_batcher.h"

#include <algorithm>
#include <stdexcept>

#include "shared/logging.h"

namespace warren {

SubmitBatcher::SubmitBatcher(Options options, std::function<void()> on_committed)
    : options_(std::move(options)), on_committed_(std::move(on_committed)) {
  for (int i = 0; i < options_.writers; ++i) writers_.emplace_back([this] { run_writer(); });
}

SubmitBatcher::~SubmitBatcher() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  work_ready_.notify_all();
  for (auto& writer : writers_) writer.join();
}

std::vector<db::InsertOutcome> SubmitBatcher::submit(std::vector<db::NewJob> jobs) {
  if (jobs.empty()) return {};
  std::future<Result> result;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw db::DatabaseUnavailable("producer is shutting down");
    queue_.push_back(Pending{std::move(jobs), {}});
    result = queue_.back().done.get_future();
  }
  work_ready_.notify_one();
  Result done = result.get();
  switch (done.error) {
    case Result::Error::kNone:
      return std::move(done.outcomes);
    case Result::Error::kUnavailable:
      throw db::DatabaseUnavailable(done.message);
    case Result::Error::kInternal:
      throw std::runtime_error(done.message);
  }
  throw std::logic_error("unreachable");
}

std::vector<SubmitBatcher::Pending> SubmitBatcher::take_batch(std::unique_lock<std::mutex>& lock) {
  work_ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
  std::vector<Pending> batch;
  std::size_t jobs = 0;
  // Whole requests only (a batch request's jobs commit together), at least one per commit.
  while (!queue_.empty() &&
         (batch.empty() || jobs + queue_.front().jobs.size() <=
                               static_cast<std::size_t>(options_.max_jobs_per_commit))) {
    jobs += queue_.front().jobs.size();
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

void SubmitBatcher::run_writer() {
  std::unique_ptr<pqxx::connection> connection;
  std::unique_lock lock(mutex_);
  while (true) {
    auto batch = take_batch(lock);
    if (batch.empty()) return;  // stopping and drained
    lock.unlock();
    commit(connection, batch);
    lock.lock();
  }
}

// A batch request whose jobs carry idempotency keys is all-or-nothing: it gets a savepoint of
// its own and is rolled back whole if one of its keys conflicts. Everything else (single jobs,
// batches without keys: they cannot conflict) shares one multi-row statement.
std::vector<std::vector<db::InsertOutcome>> SubmitBatcher::write(pqxx::work& tx,
                                                                 std::vector<Pending>& batch) {
  std::vector<std::vector<db::InsertOutcome>> results(batch.size());
  std::vector<db::NewJob> shared;
  std::vector<std::size_t> shared_owners;  // request index of each job in `shared`
  std::vector<bool> own_savepoint(batch.size());
  for (std::size_t i = 0; i < batch.size(); ++i) {
    own_savepoint[i] = needs_own_savepoint(batch[i].jobs);
    if (own_savepoint[i]) continue;
    for (const auto& job : batch[i].jobs) {
      shared.push_back(job);  // copied: a failed commit is retried from the requests
      shared_owners.push_back(i);
    }
  }
  if (!shared.empty()) {
    auto outcomes = db::insert_jobs(tx, shared);
    for (std::size_t j = 0; j < outcomes.size(); ++j)
      results[shared_owners[j]].push_back(outcomes[j]);
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (!own_savepoint[i]) continue;
    // Plain SQL savepoints: rolled back explicitly, in the one transaction of the commit.
    tx.exec0("SAVEPOINT batch_request");
    auto outcomes = db::insert_jobs(tx, batch[i].jobs);
    bool conflict = std::any_of(outcomes.begin(), outcomes.end(), [](const db::InsertOutcome& o) {
      return o.kind == db::InsertKind::kConflict;
    });
    if (conflict) {
      tx.exec0("ROLLBACK TO SAVEPOINT batch_request");
      for (auto& outcome : outcomes) {
        if (outcome.kind != db::InsertKind::kConflict)
          outcome = {db::InsertKind::kNotWritten, "", ""};
      }
    } else {
      tx.exec0("RELEASE SAVEPOINT batch_request");
    }
    results[i] = std::move(outcomes);
  }
  return results;
}

bool SubmitBatcher::needs_own_savepoint(const std::vector<db::NewJob>& jobs) {
  return jobs.size() > 1 && std::any_of(jobs.begin(), jobs.end(), [](const db::NewJob& job) {
           return job.request.idempotency_key.has_value();
         });
}

void SubmitBatcher::commit(std::unique_ptr<pqxx::connection>& connection,
                           std::vector<Pending>& batch) {
  std::size_t jobs = 0;
  for (const auto& pending : batch) jobs += pending.jobs.size();
  for (int attempt = 1;; ++attempt) {
    try {
      if (!connection || !connection->is_open()) connection = db::connect(options_.database_url);
      std::vector<std::vector<db::InsertOutcome>> results;
      {
        pqxx::work tx(*connection);
        results = write(tx, batch);
        tx.commit();
      }
      for (std::size_t i = 0; i < batch.size(); ++i) {
        batch[i].done.set_value(Result{std::move(results[i]), Result::Error::kNone, ""});
      }
      if (batch_observer_) batch_observer_(jobs);
      on_committed_();
      return;
    } catch (const pqxx::in_doubt_error& error) {
      // The commit may or may not have happened: the client must not be told "accepted" (it
      // may not be durable) nor "rejected" for certain. 503 lets it retry; an idempotency key
      // makes that retry safe.
      connection.reset();
      log::error("commit outcome unknown", {{"error", error.what()}, {"jobs", jobs}});
      fail_all(batch, true, "commit outcome unknown");
      return;
    } catch (const pqxx::broken_connection& error) {
      // Nothing was committed. A connection left broken by a database restart fails on first
      // use: one fresh connection is tried before the waiters are told 503.
      connection.reset();
      if (attempt < 2) continue;
      fail_all(batch, true, std::string("database connection lost: ") + error.what());
      return;
    } catch (const pqxx::transaction_rollback& error) {
      // Deadlock or serialization failure against another writer: the transaction is gone
      // whole, running it again is safe.
      if (attempt < 3) continue;
      fail_all(batch, true, error.what());
      return;
    } catch (const db::DatabaseUnavailable& error) {
      fail_all(batch, true, error.what());
      return;
    } catch (const pqxx::sql_error& error) {
      if (batch.size() > 1) {
        // One request's data the database refused must not fail the others that shared its
        // commit: each request is committed on its own, so only the culprit fails.
        log::warn("shared commit refused; committing requests one by one",
                  {{"error", error.what()}, {"requests", batch.size()}});
        for (auto& pending : batch) {
          std::vector<Pending> alone;
          alone.push_back(std::move(pending));
          commit(connection, alone);
        }
        return;
      }
      log::error("submit commit failed", {{"error", error.what()}, {"jobs", jobs}});
      fail_all(batch, false, error.what());
      return;
    } catch (const std::exception& error) {
      log::error("submit commit failed", {{"error", error.what()}, {"jobs", jobs}});
      fail_all(batch, false, error.what());
      return;
    }
  }
}

void SubmitBatcher::fail_all(std::vector<Pending>& batch, bool unavailable,
                             const std::string& message) {
  const auto error = unavailable ? Result::Error::kUnavailable : Result::Error::kInternal;
  for (auto& pending : batch) pending.done.set_value(Result{{}, error, message});
}

}  // namespace warren
