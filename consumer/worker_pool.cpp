// See worker_pool.h.
#include "consumer/worker_pool.h"

namespace warren::consumer {

WorkerPool::WorkerPool(int size) {
  running_threads_ = size;
  threads_.reserve(static_cast<std::size_t>(size));
  for (int i = 0; i < size; ++i) threads_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void WorkerPool::submit(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
}

bool WorkerPool::join_for(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  wake_.notify_all();
  if (!finished_.wait_for(lock, timeout, [&] { return running_threads_ == 0; })) return false;
  lock.unlock();
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  return true;
}

void WorkerPool::work() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) {
        --running_threads_;
        finished_.notify_all();
        return;
      }
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    task();  // never throws: tasks catch what their handler throws (run_handler)
  }
}

}  // namespace warren::consumer
