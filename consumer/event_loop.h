// libuv as RAII C++ objects: the consumer's event loop and the handles it uses (timers, a
// mailbox other threads post closures to, signal watchers, a socket readiness watcher).
//
// Why wrap libuv at all: a uv handle must be closed with uv_close() and its memory kept alive
// until the close callback runs, which is easy to get wrong in every caller. Here each handle is
// a member object whose destructor starts the close; the memory is released by the callback,
// so an object can be destroyed at any time on the loop thread. EventLoop's destructor runs the
// loop until every close has completed.
//
// THREADING: everything here belongs to the loop thread except Mailbox::post(), which any thread
// may call (that is what it is for: worker threads and the database thread hand results back).
#pragma once

#include <uv.h>

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace warren::consumer {

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  uv_loop_t* get() { return &loop_; }
  // Runs until stop() is called or nothing is left to do.
  void run();
  void stop();
  // Runs `work` on libuv's thread pool, then `done` on the loop thread. For blocking calls the
  // loop must not make itself (connecting to the broker).
  void queue_work(std::function<void()> work, std::function<void()> done);

 private:
  uv_loop_t loop_{};
};

// Owns one uv handle of type T, initialised by the owner's constructor right after this one's.
// The destructor hands the memory to uv_close, whose callback frees it once libuv is done.
template <typename T>
class UvHandle {
 public:
  UvHandle() : handle_(std::make_unique<T>()) {}
  ~UvHandle() {
    uv_close(reinterpret_cast<uv_handle_t*>(handle_.release()), [](uv_handle_t* closed) {
      std::unique_ptr<T> free_now(reinterpret_cast<T*>(closed));
    });
  }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  T* get() const { return handle_.get(); }

 private:
  std::unique_ptr<T> handle_;
};

class Timer {
 public:
  Timer(EventLoop& loop, std::function<void()> on_fire);
  void start(std::chrono::milliseconds first, std::chrono::milliseconds repeat = {});
  void stop();
  bool active() const;

 private:
  std::function<void()> on_fire_;
  UvHandle<uv_timer_t> timer_;
};

// Closures posted from any thread, run on the loop thread in the order posted.
class Mailbox {
 public:
  explicit Mailbox(EventLoop& loop);
  void post(std::function<void()> closure);

 private:
  void drain();

  std::mutex mutex_;
  std::vector<std::function<void()>> pending_;  // guarded by mutex_
  UvHandle<uv_async_t> async_;
};

class SignalWatcher {
 public:
  SignalWatcher(EventLoop& loop, int signal_number, std::function<void()> on_signal);

 private:
  std::function<void()> on_signal_;
  UvHandle<uv_signal_t> signal_;
};

// Calls on_readable whenever the socket has data (or an error: the reader finds out).
class SocketWatcher {
 public:
  SocketWatcher(EventLoop& loop, int fd, std::function<void()> on_readable);
  void stop();

 private:
  std::function<void()> on_readable_;
  UvHandle<uv_poll_t> poll_;
};

}  // namespace warren::consumer

namespace warren::consumer {

// Runs a callback once per loop turn, just before the loop waits for I/O: the place to send
// what the turn gathered (acks) as few frames as possible.
class BeforeWait {
 public:
  BeforeWait(EventLoop& loop, std::function<void()> on_turn);

 private:
  std::function<void()> on_turn_;
  UvHandle<uv_prepare_t> prepare_;
};

}  // namespace warren::consumer
