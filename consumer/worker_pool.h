// The threads that run job handlers (WARREN_CONCURRENCY of them). Handlers block (I/O, sleeps,
// CPU), so they cannot run on the event loop; the loop hands each claimed job to the pool and
// the task posts its result back through the loop's Mailbox.
//
// The pool does no bookkeeping of its own: the processor decides when a slot is free (it only
// submits when fewer than `size` handlers are running, stuck ones included), so tasks never
// queue here for long.
//
// Stuck handlers: C++ cannot stop a thread. A handler that ignores its stop token keeps its
// thread; join_for() lets shutdown give up on such threads after a deadline instead of hanging,
// and the process then exits without destroying the pool (see consumer_app.cpp).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace warren::consumer {

class WorkerPool {
 public:
  explicit WorkerPool(int size);
  ~WorkerPool();  // waits for every thread; see join_for() when a handler may be stuck
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  void submit(std::function<void()> task);
  int size() const { return static_cast<int>(threads_.size()); }

  // Asks the threads to finish once the queue is empty and waits up to `timeout` for them.
  // False when some thread is still busy (a stuck handler): the pool must then not be destroyed.
  bool join_for(std::chrono::milliseconds timeout);

 private:
  void work();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable finished_;
  std::deque<std::function<void()>> tasks_;  // guarded by mutex_
  bool stopping_ = false;                    // guarded by mutex_
  int running_threads_ = 0;                  // guarded by mutex_
  std::vector<std::thread> threads_;
};

}  // namespace warren::consumer
