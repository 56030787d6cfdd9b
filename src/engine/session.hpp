// An exec session (spec §3.8): one spawned process, its I/O, the clients
// attached to it and the recent output kept for whoever attaches next. The
// engine reads the process's pipes (or pty) itself; every attached client
// gets each chunk in order, and the exit indication only after all output.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/machine.hpp"
#include "util/async_mutex.hpp"

namespace spritescript::engine {

using util::AsyncMutex;

// Stream ids of the non-TTY framing (spec §3.4); TTY output uses kStdout.
enum : std::uint8_t { kStdin = 0, kStdout = 1, kStderr = 2, kExit = 3, kStdinEof = 4 };

// The most output one WebSocket frame carries (after its stream id). Spec
// §3.4 asks for frames <= 64 KiB; a 65532-byte message has a 4-byte header,
// so each frame is exactly 64 KiB on the wire, one socket write (Asio writes
// at most 64 KiB per call; one byte more would take two).
constexpr std::size_t kMaxFrameData = 65531;

// Someone receiving a session's output: a WebSocket, or an HTTP exec body.
class Subscriber {
 public:
  virtual ~Subscriber() = default;
  // False when the client is gone; it is then detached.
  virtual boost::asio::awaitable<bool> output(std::uint8_t stream, std::string_view data) = 0;
  virtual boost::asio::awaitable<void> exited(int code) = 0;
  // Called on attach just before the replay, in order with the output:
  // `replay_offset` counts the output bytes before the first replayed one.
  // False when the client is gone.
  virtual boost::asio::awaitable<bool> attached(std::uint64_t replay_offset) { co_return true; }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  struct Info {
    std::vector<std::string> argv;
    std::string workdir;
    bool tty = false;
    unsigned rows = 24, cols = 80;
    // How long the process may run with nobody attached; zero = forever.
    std::chrono::milliseconds max_run_after_disconnect{0};
  };

  Session(const boost::asio::any_io_executor& ex, std::shared_ptr<Machine> machine, Spawned spawned,
          Info info);
  ~Session();

  int id() const { return pid_; }
  const Info& info() const { return info_; }
  std::int64_t created_unix() const { return created_unix_; }
  std::string created_rfc3339() const;
  std::string last_activity_rfc3339() const;
  double bytes_per_second() const;
  bool attached() const { return !subscribers_.empty(); }
  std::optional<int> exit_code() const { return exit_code_; }
  std::string command_line() const;

  // Replays the retained output to `subscriber`, then streams live output
  // to it until the exit. (Send session_info before: output produced
  // meanwhile is retained, so nothing is lost.) Starts the pumps on the
  // first attach. False when the session already ended.
  boost::asio::awaitable<bool> attach(std::shared_ptr<Subscriber> subscriber);
  // The client went away without the process ending.
  void detach(const std::shared_ptr<Subscriber>& subscriber);
  // Starts reading output with nobody attached (a detached session).
  void start();

  boost::asio::awaitable<void> write_stdin(std::string_view data);
  void close_stdin();
  void resize(unsigned rows, unsigned cols);
  void signal(int signo);
  // Waits until the process ended and its exit was delivered, or `limit`.
  boost::asio::awaitable<bool> wait_exit(std::chrono::milliseconds limit);

  // Registers for the process's exit; call once, right after construction.
  void watch_exit();
  // Called once when the session is over (exit delivered).
  std::function<void(int)> on_finished;

 private:
  // Memory that a pump reads into; once filled it becomes a Chunk of the
  // scrollback as it is (no copy) and comes back when the scrollback drops it.
  struct Buffer {
    std::unique_ptr<char[]> bytes;
    std::size_t capacity = 0;
  };
  struct Chunk {
    std::uint8_t stream;
    Buffer buffer;
    std::size_t begin, end;  // the part still retained
    std::string_view data() const { return {buffer.bytes.get() + begin, end - begin}; }
  };
  boost::asio::awaitable<void> pump(boost::asio::posix::stream_descriptor& source,
                                    std::uint8_t stream);
  // Retains buffer's first `n` bytes (taking the buffer or copying them) and
  // sends them to every subscriber.
  boost::asio::awaitable<void> deliver(std::uint8_t stream, Buffer& buffer, std::size_t n);
  Buffer take_buffer(std::size_t capacity);
  boost::asio::awaitable<void> finish(int code);
  void arm_disconnect_timer();

  boost::asio::any_io_executor executor_;
  std::shared_ptr<Machine> machine_;
  int pid_;
  Info info_;
  std::int64_t created_unix_;
  std::chrono::system_clock::time_point created_, last_activity_;
  std::uint64_t bytes_out_ = 0;  // all output so far, counted in deliver()

  std::optional<boost::asio::posix::stream_descriptor> stdin_, stdout_, stderr_;
  bool started_ = false;
  int open_pumps_ = 0;
  bool progress_ = false;
  boost::asio::steady_timer drain_timer_, disconnect_timer_;
  std::vector<std::weak_ptr<boost::asio::steady_timer>> exit_waiters_;
  std::optional<int> pending_exit_;  // heard before the pumps started

  AsyncMutex delivery_;  // output, attach and exit in one order
  std::vector<std::shared_ptr<Subscriber>> subscribers_;
  std::deque<Chunk> retained_;
  std::size_t retained_bytes_ = 0;
  std::vector<Buffer> spare_;     // read buffers the scrollback gave back
  std::optional<int> exit_code_;  // set once the exit was delivered
  bool exiting_ = false;
};

}  // namespace spritescript::engine
