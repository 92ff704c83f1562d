// See event_loop.h.
#include "consumer/event_loop.h"

#include <stdexcept>
#include <string>

namespace warren::consumer {
namespace {

void check(int status, const char* what) {
  if (status != 0) throw std::runtime_error(std::string(what) + ": " + uv_strerror(status));
}

// A queued piece of blocking work and what to run on the loop when it is done.
struct QueuedWork {
  uv_work_t request{};
  std::function<void()> work;
  std::function<void()> done;
};

}  // namespace

EventLoop::EventLoop() {
  check(uv_loop_init(&loop_), "uv_loop_init");
}

EventLoop::~EventLoop() {
  // Handles closed by their owners' destructors need one more turn for their close callbacks.
  uv_run(&loop_, UV_RUN_DEFAULT);
  uv_loop_close(&loop_);
}

void EventLoop::run() {
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void EventLoop::stop() {
  uv_stop(&loop_);
}

void EventLoop::queue_work(std::function<void()> work, std::function<void()> done) {
  auto queued = std::make_unique<QueuedWork>();
  queued->work = std::move(work);
  queued->done = std::move(done);
  queued->request.data = queued.get();
  check(uv_queue_work(
            &loop_, &queued->request,
            [](uv_work_t* request) { static_cast<QueuedWork*>(request->data)->work(); },
            [](uv_work_t* request, int /*status*/) {
              std::unique_ptr<QueuedWork> owned(static_cast<QueuedWork*>(request->data));
              owned->done();
            }),
        "uv_queue_work");
  queued.release();  // owned by libuv until the after-work callback above
}

Timer::Timer(EventLoop& loop, std::function<void()> on_fire) : on_fire_(std::move(on_fire)) {
  check(uv_timer_init(loop.get(), timer_.get()), "uv_timer_init");
  timer_.get()->data = this;
}

void Timer::start(std::chrono::milliseconds first, std::chrono::milliseconds repeat) {
  uv_timer_start(
      timer_.get(), [](uv_timer_t* t) { static_cast<Timer*>(t->data)->on_fire_(); },
      static_cast<std::uint64_t>(std::max<std::int64_t>(first.count(), 0)),
      static_cast<std::uint64_t>(std::max<std::int64_t>(repeat.count(), 0)));
}

void Timer::stop() {
  uv_timer_stop(timer_.get());
}

bool Timer::active() const {
  return uv_is_active(reinterpret_cast<const uv_handle_t*>(timer_.get())) != 0;
}

Mailbox::Mailbox(EventLoop& loop) {
  check(uv_async_init(loop.get(), async_.get(),
                      [](uv_async_t* a) { static_cast<Mailbox*>(a->data)->drain(); }),
        "uv_async_init");
  async_.get()->data = this;
}

void Mailbox::post(std::function<void()> closure) {
  {
    std::lock_guard lock(mutex_);
    pending_.push_back(std::move(closure));
  }
  uv_async_send(async_.get());  // coalesces: one drain may run many closures
}

void Mailbox::drain() {
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard lock(mutex_);
    batch.swap(pending_);
  }
  for (auto& closure : batch) closure();
}

SignalWatcher::SignalWatcher(EventLoop& loop, int signal_number, std::function<void()> on_signal)
    : on_signal_(std::move(on_signal)) {
  check(uv_signal_init(loop.get(), signal_.get()), "uv_signal_init");
  signal_.get()->data = this;
  check(uv_signal_start(
            signal_.get(),
            [](uv_signal_t* s, int) { static_cast<SignalWatcher*>(s->data)->on_signal_(); },
            signal_number),
        "uv_signal_start");
}

SocketWatcher::SocketWatcher(EventLoop& loop, int fd, std::function<void()> on_readable)
    : on_readable_(std::move(on_readable)) {
  check(uv_poll_init(loop.get(), poll_.get(), fd), "uv_poll_init");
  poll_.get()->data = this;
  check(uv_poll_start(
            poll_.get(), UV_READABLE | UV_DISCONNECT,
            [](uv_poll_t* p, int, int) { static_cast<SocketWatcher*>(p->data)->on_readable_(); }),
        "uv_poll_start");
}

void SocketWatcher::stop() {
  uv_poll_stop(poll_.get());
}

}  // namespace warren::consumer

namespace warren::consumer {

BeforeWait::BeforeWait(EventLoop& loop, std::function<void()> on_turn)
    : on_turn_(std::move(on_turn)) {
  if (int status = uv_prepare_init(loop.get(), prepare_.get()); status != 0) {
    throw std::runtime_error(std::string("uv_prepare_init: ") + uv_strerror(status));
  }
  prepare_.get()->data = this;
  uv_prepare_start(prepare_.get(),
                   [](uv_prepare_t* p) { static_cast<BeforeWait*>(p->data)->on_turn_(); });
  // A prepare handle must not keep the loop alive on its own.
  uv_unref(reinterpret_cast<uv_handle_t*>(prepare_.get()));
}

}  // namespace warren::consumer
