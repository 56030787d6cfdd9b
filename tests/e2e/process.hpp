// Helpers for the end-to-end tests: run a program as a child process, with
// its own argv, environment, working directory and stdin, and capture what it
// does (stdout, stderr, exit code or signal). Every wait has a wall-clock
// limit after which the child is killed, so a hung test fails instead of
// hanging the suite.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace e2e {

using Millis = std::chrono::milliseconds;

// A hang guard, not a performance expectation: generous on purpose.
inline constexpr Millis kDefaultTimeout{60'000};

struct Command {
  std::vector<std::string> argv;  // argv[0] is the program's path
  // Environment overrides on top of the test's own environment: a value sets
  // the variable, std::nullopt removes it.
  std::map<std::string, std::optional<std::string>> env;
  std::filesystem::path cwd;  // empty: the test's working directory
  std::string stdin_text;     // written to the child's stdin, which is then closed
  Millis timeout = kDefaultTimeout;
};

struct Result {
  bool exited = false;     // ended by exit(): exit_code is valid
  int exit_code = -1;      // when exited
  int signal = 0;          // ended by this signal (when !exited)
  bool timed_out = false;  // the harness killed it after Command::timeout
  std::string out;         // everything written to stdout
  std::string err;         // everything written to stderr

  std::vector<std::string> out_lines() const;
  std::vector<std::string> err_lines() const;
  // A readable summary (status, stdout, stderr) for test failure messages.
  std::string describe() const;
};

// The lines of `text`; a final newline does not start another (empty) line.
std::vector<std::string> split_lines(std::string_view text);

// Runs `command` to the end and returns what it did.
Result run(const Command& command);

// A child started asynchronously: wait for some output, signal it, then
// collect the result. The destructor kills a child still running.
class Child {
 public:
  explicit Child(const Command& command);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }

  // Reads the child's output until its stdout contains `text`. False when the
  // child closed stdout first or `timeout` passed.
  bool wait_for_stdout(std::string_view text, Millis timeout = kDefaultTimeout);

  // Waits until every thread of the child sleeps in the kernel (state S in
  // /proc/PID/task/*/stat), e.g. blocked in epoll_wait rather than running
  // code. Linux only. False when the child ends first or `timeout` passes.
  bool wait_until_blocked(Millis timeout = kDefaultTimeout);

  // Sends `sig` to the child (unless it has already been reaped).
  void send_signal(int sig);

  // Keeps reading output for `duration`; returns early if the child exits.
  // Returns true when the child is still running afterwards.
  bool still_running_after(Millis duration);

  // Waits for the child to end (killing it after `timeout`), and returns the
  // result with all its output.
  Result wait(Millis timeout = kDefaultTimeout);

  const std::string& out() const { return result_.out; }
  const std::string& err() const { return result_.err; }

 private:
  using Clock = std::chrono::steady_clock;

  // Reads available output until `deadline`, or until `done()` is true or
  // both output pipes are closed. Returns done().
  template <typename Done>
  bool pump_until(Clock::time_point deadline, Done done);
  void close_fd(int& fd);
  bool try_reap(bool block);
  void kill_and_reap();

  pid_t pid_ = -1;
  bool reaped_ = false;
  int stdin_fd_ = -1;
  int stdout_fd_ = -1;
  int stderr_fd_ = -1;
  std::string stdin_text_;
  size_t stdin_written_ = 0;
  Result result_;
};

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it
// when the object goes away. path() is canonical (no symlinks), so it
// compares equal to what the child sees as its working directory.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

  // Writes `content` to path()/relative, creating parent directories.
  std::filesystem::path write(const std::filesystem::path& relative,
                              std::string_view content) const;
  // Creates path()/relative and its parents.
  std::filesystem::path mkdir(const std::filesystem::path& relative) const;

 private:
  std::filesystem::path path_;
};

// A command running the spritescript binary under test with `args`, kept
// away from the user's own modules: XDG_CONFIG_HOME points at a directory
// that does not exist and SPRITESCRIPT_PATH is unset. Tests of the module
// search override these.
Command spritescript(std::vector<std::string> args);

}  // namespace e2e
