#include "engine/session.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "proto/values.hpp"

namespace asio = boost::asio;

namespace spritescript::engine {
namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
// What a pump reads at once: at first as much as one frame holds. Once a
// read fills that, the producer is fast: the pipe grows to 1 MiB (the most
// an unprivileged process may ask for) and reads to as many whole frames as
// fit in it, so each MiB costs one read and one wake-up instead of sixteen
// (subscribers cut a read into frames; whole frames, no runt at the end).
constexpr std::size_t kFirstRead = kMaxFrameData;
constexpr int kLargePipe = 1024 * 1024;
constexpr std::size_t kLargeRead = (kLargePipe / kMaxFrameData) * kMaxFrameData;
// Output kept for clients that attach later (scrollback).
constexpr std::size_t kRetainedBytes = std::size_t{1024} * 1024;
// After the process exits, output still in flight is drained; a pipe that a
// background child keeps open is given up after this long without data.
constexpr auto kDrainQuiet = std::chrono::milliseconds(500);

// Unlocks the mutex when the scope ends, whatever happens.
struct Unlock {
  AsyncMutex& mutex;
  ~Unlock() { mutex.unlock(); }
};

asio::awaitable<void> tell_exit(std::shared_ptr<Subscriber> subscriber, int code) {
  co_await subscriber->exited(code);
}

}  // namespace

Session::Session(const asio::any_io_executor& ex, std::shared_ptr<Machine> machine, Spawned spawned,
                 Info info)
    : executor_(ex),
      machine_(std::move(machine)),
      pid_(spawned.pid),
      info_(std::move(info)),
      created_(std::chrono::system_clock::now()),
      last_activity_(created_),
      drain_timer_(ex),
      disconnect_timer_(ex),
      delivery_(ex) {
  created_unix_ =
      std::chrono::duration_cast<std::chrono::seconds>(created_.time_since_epoch()).count();
  if (info_.tty) {
    stdout_.emplace(ex, spawned.fds[0]);  // the pty master: read and written
  } else {
    stdin_.emplace(ex, spawned.fds[0]);
    stdout_.emplace(ex, spawned.fds[1]);
    stderr_.emplace(ex, spawned.fds[2]);
  }
}

Session::~Session() = default;

void Session::watch_exit() {
  std::weak_ptr<Session> weak = shared_from_this();
  machine_->on_exit(pid_, [weak](int code) {
    if (auto self = weak.lock()) {
      asio::co_spawn(self->executor_, self->finish(code), asio::detached);
    }
  });
}

std::string Session::command_line() const {
  std::string line;
  for (const auto& a : info_.argv) {
    if (!line.empty()) line += ' ';
    line += a;
  }
  return line;
}

std::string Session::created_rfc3339() const {
  return proto::format_rfc3339(created_);
}

std::string Session::last_activity_rfc3339() const {
  return proto::format_rfc3339(last_activity_);
}

double Session::bytes_per_second() const {
  auto seconds = std::chrono::duration<double>(std::chrono::system_clock::now() - created_).count();
  return seconds > 0 ? static_cast<double>(bytes_out_) / seconds : 0.0;
}

void Session::start() {
  if (started_) return;
  started_ = true;
  auto self = shared_from_this();
  if (stdout_) {
    ++open_pumps_;
    asio::co_spawn(executor_, pump(*stdout_, kStdout), asio::detached);
  }
  if (stderr_) {
    ++open_pumps_;
    asio::co_spawn(executor_, pump(*stderr_, kStderr), asio::detached);
  }
  if (pending_exit_) asio::co_spawn(executor_, finish(*pending_exit_), asio::detached);
  if (subscribers_.empty()) arm_disconnect_timer();  // started detached
}

Session::Buffer Session::take_buffer(std::size_t capacity) {
  while (!spare_.empty()) {
    Buffer buffer = std::move(spare_.back());
    spare_.pop_back();
    if (buffer.capacity >= capacity) return buffer;
  }
  return {std::make_unique_for_overwrite<char[]>(capacity), capacity};
}

asio::awaitable<void> Session::pump(asio::posix::stream_descriptor& source, std::uint8_t stream) {
  auto self = shared_from_this();
  std::size_t read_size = kFirstRead;
  Buffer buffer = take_buffer(read_size);
  for (;;) {
    auto [ec, n] = co_await source.async_read_some(
        asio::buffer(buffer.bytes.get(), std::min(buffer.capacity, read_size)), kAsTuple);
    if (ec || n == 0) break;  // EOF, EIO (pty with no writer left), or given up
    if (n == read_size && read_size < kLargeRead) {
      if (!info_.tty) {
        // Best effort: past the user's pipe quota the kernel refuses.
        ::fcntl(source.native_handle(), F_SETPIPE_SZ, kLargePipe);
      }
      read_size = kLargeRead;
    }
    progress_ = true;
    last_activity_ = std::chrono::system_clock::now();
    co_await deliver(stream, buffer, n);
    if (buffer.capacity < read_size) buffer = take_buffer(read_size);
  }
  --open_pumps_;
  drain_timer_.cancel();
}

asio::awaitable<void> Session::deliver(std::uint8_t stream, Buffer& buffer, std::size_t n) {
  co_await delivery_.lock();
  Unlock unlock{delivery_};
  // A well-filled buffer is kept as it is; a little output is copied so
  // that a trickle of small reads does not pin a big buffer each.
  if (n >= buffer.capacity / 2) {
    retained_.push_back({stream, std::move(buffer), 0, n});
    buffer = {};
  } else {
    Buffer copy{std::make_unique_for_overwrite<char[]>(n), n};
    std::memcpy(copy.bytes.get(), buffer.bytes.get(), n);
    retained_.push_back({stream, std::move(copy), 0, n});
  }
  // (This view stays valid: a chunk is at most one read, less than the
  // limit, so the trimming below never drops the newest.)
  const std::string_view data = retained_.back().data();
  retained_bytes_ += n;
  bytes_out_ += n;
  // Exactly the last kRetainedBytes are kept; whole chunks that fall out
  // lend their memory to the next reads.
  while (retained_bytes_ > kRetainedBytes) {
    Chunk& front = retained_.front();
    std::size_t excess = retained_bytes_ - kRetainedBytes;
    if (front.end - front.begin > excess) {
      front.begin += excess;
      retained_bytes_ -= excess;
      break;
    }
    retained_bytes_ -= front.end - front.begin;
    if (front.buffer.capacity >= kFirstRead && spare_.empty()) {
      spare_.push_back(std::move(front.buffer));
    }
    retained_.pop_front();
  }
  auto subscribers = subscribers_;
  for (const auto& subscriber : subscribers) {
    if (!co_await subscriber->output(stream, data)) detach(subscriber);
  }
}

asio::awaitable<bool> Session::attach(std::shared_ptr<Subscriber> subscriber) {
  auto self = shared_from_this();
  co_await delivery_.lock();
  Unlock unlock{delivery_};
  if (exit_code_) co_return false;
  if (!co_await subscriber->attached(bytes_out_ - retained_bytes_)) co_return true;
  for (const auto& chunk : retained_) {
    if (!co_await subscriber->output(chunk.stream, chunk.data())) co_return true;
  }
  subscribers_.push_back(std::move(subscriber));
  disconnect_timer_.cancel();
  start();
  co_return true;
}

void Session::detach(const std::shared_ptr<Subscriber>& subscriber) {
  auto it = std::find(subscribers_.begin(), subscribers_.end(), subscriber);
  if (it == subscribers_.end()) return;
  subscribers_.erase(it);
  if (subscribers_.empty() && !exit_code_) arm_disconnect_timer();
}

void Session::arm_disconnect_timer() {
  if (info_.max_run_after_disconnect.count() <= 0) return;  // runs until it ends
  disconnect_timer_.expires_after(info_.max_run_after_disconnect);
  std::weak_ptr<Session> weak = shared_from_this();
  disconnect_timer_.async_wait([weak](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->attached() || self->exit_code_) return;
    self->signal(SIGKILL);
  });
}

asio::awaitable<void> Session::finish(int code) {
  auto self = shared_from_this();
  if (exiting_) co_return;
  if (!started_) {
    pending_exit_ = code;  // start() finishes once the pumps run
    co_return;
  }
  exiting_ = true;
  // Every byte the process wrote goes out before the exit (spec §3.4).
  while (open_pumps_ > 0) {
    progress_ = false;
    drain_timer_.expires_after(kDrainQuiet);
    auto [ec] = co_await drain_timer_.async_wait(kAsTuple);
    if (!ec && !progress_ && open_pumps_ > 0) {
      boost::system::error_code ignored;
      if (stdout_) stdout_->cancel(ignored);
      if (stderr_) stderr_->cancel(ignored);
    }
  }
  // Off the session list first: once a client hears the exit, listing the
  // sprite's sessions must not show this one.
  if (on_finished) {
    auto finished = std::move(on_finished);
    on_finished = nullptr;
    finished(code);
  }
  {
    co_await delivery_.lock();
    Unlock unlock{delivery_};
    exit_code_ = code;
    auto subscribers = std::move(subscribers_);
    subscribers_.clear();
    // Each client hears the exit on its own: one that stopped reading (or is
    // slow to acknowledge the close) must not delay the others.
    for (auto& subscriber : subscribers) {
      asio::co_spawn(executor_, tell_exit(std::move(subscriber), code), asio::detached);
    }
  }
  disconnect_timer_.cancel();
  close_stdin();
  for (const auto& waiter : exit_waiters_) {
    if (auto timer = waiter.lock()) timer->cancel();
  }
  exit_waiters_.clear();
}

asio::awaitable<void> Session::write_stdin(std::string_view data) {
  auto self = shared_from_this();
  auto* target = info_.tty ? &*stdout_ : (stdin_ ? &*stdin_ : nullptr);
  if (!target || !target->is_open() || data.empty()) co_return;
  last_activity_ = std::chrono::system_clock::now();
  // A process that closed its stdin makes this fail (EPIPE): nothing to do.
  co_await asio::async_write(*target, asio::buffer(data.data(), data.size()), kAsTuple);
}

void Session::close_stdin() {
  if (stdin_ && stdin_->is_open()) {
    boost::system::error_code ignored;
    stdin_->close(ignored);
  }
}

void Session::resize(unsigned rows, unsigned cols) {
  if (!info_.tty || !stdout_ || !stdout_->is_open() || rows == 0 || cols == 0) return;
  info_.rows = rows;
  info_.cols = cols;
  winsize ws{static_cast<unsigned short>(rows), static_cast<unsigned short>(cols), 0, 0};
  ::ioctl(stdout_->native_handle(), TIOCSWINSZ, &ws);  // the kernel sends SIGWINCH
}

void Session::signal(int signo) {
  if (!exit_code_) machine_->signal(pid_, signo);
}

asio::awaitable<bool> Session::wait_exit(std::chrono::milliseconds limit) {
  auto self = shared_from_this();
  if (exit_code_) co_return true;
  auto timer = std::make_shared<asio::steady_timer>(executor_);
  timer->expires_after(limit);
  exit_waiters_.push_back(timer);
  co_await timer->async_wait(kAsTuple);
  co_return exit_code_.has_value();
}

}  // namespace spritescript::engine
