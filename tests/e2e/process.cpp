#include "process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>

extern char** environ;

namespace e2e {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::system_error(errno, std::generic_category(), what);
}

// Writing to a child's stdin after it has exited must fail with EPIPE
// instead of killing the test binary.
void ignore_sigpipe() {
  static const bool ignored = [] {
    struct sigaction sa {};
    sa.sa_handler = SIG_IGN;
    return ::sigaction(SIGPIPE, &sa, nullptr) == 0;
  }();
  (void)ignored;
}

std::vector<std::string> environment_with(
    const std::map<std::string, std::optional<std::string>>& overrides) {
  std::vector<std::string> env;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    std::string_view text(*entry);
    if (overrides.count(std::string(text.substr(0, text.find('=')))) == 0) env.emplace_back(text);
  }
  for (const auto& [name, value] : overrides) {
    if (value) env.push_back(name + "=" + *value);
  }
  return env;
}

// A NULL-terminated array of pointers into `strings` (which must outlive it).
std::vector<char*> c_array(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

struct Pipe {
  int read = -1;
  int write = -1;
  Pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) fail("pipe2");
    read = fds[0];
    write = fds[1];
  }
};

void set_nonblocking(int fd) {
  if (::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) fail("fcntl");
}

// What the child reports through the status pipe when it cannot exec.
struct ExecFailure {
  int step;  // 0: chdir, 1: execve
  int error;
};

// Runs in the child between fork and exec: async-signal-safe calls only.
[[noreturn]] void exec_child(const Pipe& in, const Pipe& out, const Pipe& err, const Pipe& status,
                             const char* cwd, char* const argv[], char* const envp[]) {
  ::setpgid(0, 0);  // its own group: the harness can kill it without hitting itself
  ::dup2(in.read, STDIN_FILENO);
  ::dup2(out.write, STDOUT_FILENO);
  ::dup2(err.write, STDERR_FILENO);
  // Dispositions set to "ignore" and the signal mask survive exec: give the
  // child the defaults whatever the test runner uses.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig : {SIGINT, SIGPIPE, SIGTERM, SIGQUIT, SIGHUP}) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);

  ExecFailure failure{0, 0};
  if (cwd[0] == '\0' || ::chdir(cwd) == 0) {
    ::execve(argv[0], argv, envp);
    failure.step = 1;
  }
  failure.error = errno;
  (void)!::write(status.write, &failure, sizeof failure);
  ::_exit(127);
}

// The scheduling state of one thread: the field after "(comm)" in its
// /proc stat file ('R' running, 'S' sleeping in a system call, ...), or 0
// when it cannot be read.
char thread_state(const std::filesystem::path& stat_file) {
  std::ifstream stream(stat_file);
  std::string stat((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  const size_t comm_end = stat.rfind(')');  // comm itself may contain ')'
  if (comm_end == std::string::npos || comm_end + 2 >= stat.size()) return 0;
  return stat[comm_end + 2];
}

}  // namespace

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    lines.emplace_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return lines;
}

std::vector<std::string> Result::out_lines() const {
  return split_lines(out);
}
std::vector<std::string> Result::err_lines() const {
  return split_lines(err);
}

std::string Result::describe() const {
  std::ostringstream s;
  if (timed_out) {
    s << "timed out, killed by the test harness";
  } else if (exited) {
    s << "exited with code " << exit_code;
  } else {
    s << "killed by signal " << signal << " (" << ::strsignal(signal) << ")";
  }
  s << "\n--- stdout ---\n" << out << "\n--- stderr ---\n" << err << "\n--------------";
  return s.str();
}

Result run(const Command& command) {
  Child child(command);
  return child.wait(command.timeout);
}

// ---- Child -------------------------------------------------------------------

Child::Child(const Command& command) : stdin_text_(command.stdin_text) {
  if (command.argv.empty()) throw std::invalid_argument("e2e::Child: empty argv");
  ignore_sigpipe();

  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> argv_strings = command.argv;
  std::vector<std::string> env_strings = environment_with(command.env);
  std::vector<char*> argv = c_array(argv_strings);
  std::vector<char*> envp = c_array(env_strings);
  const std::string cwd = command.cwd.string();

  Pipe in, out, err, status;
  pid_ = ::fork();
  if (pid_ < 0) fail("fork");
  if (pid_ == 0) exec_child(in, out, err, status, cwd.c_str(), argv.data(), envp.data());
  ::setpgid(pid_, pid_);  // also here, so that it holds before the child runs

  for (int fd : {in.read, out.write, err.write, status.write}) ::close(fd);
  stdin_fd_ = in.write;
  stdout_fd_ = out.read;
  stderr_fd_ = err.read;

  // The status pipe closes on a successful exec and carries errno otherwise.
  ExecFailure failure{};
  ssize_t n;
  do {
    n = ::read(status.read, &failure, sizeof failure);
  } while (n < 0 && errno == EINTR);
  ::close(status.read);
  if (n == static_cast<ssize_t>(sizeof failure)) {
    try_reap(true);
    for (int* fd : {&stdin_fd_, &stdout_fd_, &stderr_fd_}) close_fd(*fd);
    errno = failure.error;
    fail(failure.step == 0 ? "chdir " + cwd : "exec " + command.argv[0]);
  }

  for (int fd : {stdin_fd_, stdout_fd_, stderr_fd_}) set_nonblocking(fd);
  if (stdin_text_.empty()) close_fd(stdin_fd_);
}

Child::~Child() {
  kill_and_reap();
  for (int* fd : {&stdin_fd_, &stdout_fd_, &stderr_fd_}) close_fd(*fd);
}

void Child::close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

template <typename Done>
bool Child::pump_until(Clock::time_point deadline, Done done) {
  while (!done() && (stdout_fd_ >= 0 || stderr_fd_ >= 0)) {
    const auto left = std::chrono::ceil<Millis>(deadline - Clock::now()).count();
    if (left <= 0) break;

    pollfd fds[3];
    nfds_t n = 0;
    if (stdin_fd_ >= 0) fds[n++] = {stdin_fd_, POLLOUT, 0};
    if (stdout_fd_ >= 0) fds[n++] = {stdout_fd_, POLLIN, 0};
    if (stderr_fd_ >= 0) fds[n++] = {stderr_fd_, POLLIN, 0};
    if (::poll(fds, n, static_cast<int>(std::min<long long>(left, INT_MAX))) < 0) {
      if (errno == EINTR) continue;
      fail("poll");
    }

    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == stdin_fd_) {
        const ssize_t w = ::write(stdin_fd_, stdin_text_.data() + stdin_written_,
                                  stdin_text_.size() - stdin_written_);
        if (w > 0) stdin_written_ += static_cast<size_t>(w);
        const bool broken = w < 0 && errno != EAGAIN && errno != EINTR;
        if (broken || stdin_written_ == stdin_text_.size()) close_fd(stdin_fd_);
        continue;
      }
      int& fd = fds[i].fd == stdout_fd_ ? stdout_fd_ : stderr_fd_;
      std::string& sink = fds[i].fd == stdout_fd_ ? result_.out : result_.err;
      char buf[4096];
      const ssize_t r = ::read(fd, buf, sizeof buf);
      if (r > 0) {
        sink.append(buf, static_cast<size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        close_fd(fd);
      }
    }
  }
  return done();
}

bool Child::try_reap(bool block) {
  if (reaped_) return true;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r != pid_) return false;
  reaped_ = true;
  if (WIFEXITED(status)) {
    result_.exited = true;
    result_.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result_.signal = WTERMSIG(status);
  }
  return true;
}

void Child::kill_and_reap() {
  if (pid_ <= 0 || reaped_) return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  try_reap(true);
}

bool Child::wait_for_stdout(std::string_view text, Millis timeout) {
  return pump_until(Clock::now() + timeout,
                    [&] { return result_.out.find(text) != std::string::npos; });
}

bool Child::wait_until_blocked(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid_) + "/task";
  while (Clock::now() < deadline && !try_reap(false)) {
    bool all_sleeping = true;
    std::error_code error;
    for (const auto& thread : std::filesystem::directory_iterator(tasks, error)) {
      if (thread_state(thread.path() / "stat") != 'S') all_sleeping = false;
    }
    if (!error && all_sleeping) return true;
    // Keep draining output meanwhile: a child blocked writing to a full pipe
    // would look asleep too.
    pump_until(std::min(deadline, Clock::now() + Millis(2)), [] { return false; });
    std::this_thread::sleep_for(Millis(1));
  }
  return false;
}

void Child::send_signal(int sig) {
  if (!reaped_) ::kill(pid_, sig);
}

bool Child::still_running_after(Millis duration) {
  const auto deadline = Clock::now() + duration;
  pump_until(deadline, [] { return false; });
  // Output closes a moment before the process can be reaped.
  while (!try_reap(false) && Clock::now() < deadline) {
    std::this_thread::sleep_for(Millis(5));
  }
  return !reaped_;
}

Result Child::wait(Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  // Read output in short slices, checking between them whether it has ended.
  while (!try_reap(false)) {
    if (Clock::now() >= deadline) {
      result_.timed_out = true;
      kill_and_reap();
      break;
    }
    const auto slice = std::min(deadline, Clock::now() + Millis(10));
    if (stdout_fd_ >= 0 || stderr_fd_ >= 0) {
      pump_until(slice, [] { return false; });
    } else {
      std::this_thread::sleep_until(slice);
    }
  }
  // The rest of the output. The pipes close when the child exits, unless a
  // process it started still holds them: do not wait for that one long.
  pump_until(Clock::now() + Millis(1000), [] { return false; });
  for (int* fd : {&stdin_fd_, &stdout_fd_, &stderr_fd_}) close_fd(*fd);
  return result_;
}

// ---- TempDir -------------------------------------------------------------------

TempDir::TempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/spritescript-e2e-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) fail("mkdtemp " + pattern);
  path_ = std::filesystem::canonical(pattern);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path TempDir::write(const std::filesystem::path& relative,
                                     std::string_view content) const {
  const std::filesystem::path file = path_ / relative;
  std::filesystem::create_directories(file.parent_path());
  std::ofstream stream(file, std::ios::binary | std::ios::trunc);
  stream.write(content.data(), static_cast<std::streamsize>(content.size()));
  if (!stream.flush()) throw std::runtime_error("cannot write " + file.string());
  return file;
}

std::filesystem::path TempDir::mkdir(const std::filesystem::path& relative) const {
  const std::filesystem::path dir = path_ / relative;
  std::filesystem::create_directories(dir);
  return dir;
}

// ---- the binary under test -------------------------------------------------------

Command spritescript(std::vector<std::string> args) {
  Command command;
  command.argv.push_back(SPRITESCRIPT_BIN);
  command.argv.insert(command.argv.end(), args.begin(), args.end());
  command.env["XDG_CONFIG_HOME"] = "/nonexistent/spritescript-e2e-config";
  command.env["SPRITESCRIPT_PATH"] = std::nullopt;
  return command;
}

}  // namespace e2e
