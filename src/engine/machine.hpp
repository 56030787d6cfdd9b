// The engine's side of one running sandbox: it starts `spritescript agent`,
// asks it to spawn processes (receiving their pipes or pty master), signals
// them, and hears when they exit. A sprite is "running" exactly while its
// Machine is up.
#pragma once

#include <sys/types.h>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace spritescript::engine {

struct SpawnSpec {
  std::vector<std::string> argv;
  std::string path;  // empty: argv[0], else bash
  std::vector<std::string> env;
  std::string dir;  // empty: /home/sprite
  bool tty = false;
  unsigned rows = 24, cols = 80;
};

// A spawned process's descriptors, owned: [stdin, stdout, stderr] or [pty].
struct Spawned {
  int pid = 0;  // as the sandbox sees it (also the session id)
  std::vector<int> fds;
};

// A TCP socket the agent connected inside the sandbox (owned, non-blocking).
struct Connected {
  int fd = -1;
  bool in_progress = false;  // the connect has not completed yet: wait until writable
};

class Machine : public std::enable_shared_from_this<Machine> {
 public:
  struct Config {
    std::string sprite_dir;
    std::string hostname;
    bool isolate = true;  // false: --sandbox=none
  };

  // Starts the agent and waits until it reports ready. Throws
  // std::runtime_error with the agent's one-line reason when it cannot.
  static boost::asio::awaitable<std::shared_ptr<Machine>> start(boost::asio::any_io_executor ex,
                                                                Config config);

  ~Machine();
  Machine(const Machine&) = delete;
  Machine& operator=(const Machine&) = delete;

  // Throws std::runtime_error when the agent refused or is gone.
  boost::asio::awaitable<Spawned> spawn(const SpawnSpec& spec);
  // Has the agent connect to `ip`:`port` inside the sandbox's network
  // namespace. Throws std::runtime_error with the reason (strerror text,
  // e.g. "Connection refused") or when the agent is gone.
  boost::asio::awaitable<Connected> connect(const std::string& ip, int port);
  void signal(int pid, int signo);
  void freeze();
  // freeze(), completing once every process in the sandbox has stopped.
  boost::asio::awaitable<void> freeze_and_wait();
  void thaw();
  // Ends the sandbox and every process in it.
  void stop();
  bool up() const { return socket_ >= 0; }
  // The sprite's root directory as its processes see it (O_PATH): resolve
  // paths under it with openat2(RESOLVE_IN_ROOT). Open until the Machine is
  // destroyed, even after the sandbox went down, so an operation in flight
  // never sees the number reused.
  int root_fd() const { return root_fd_; }
  // The egress sockets the agent opened in the sandbox (sandbox.hpp), once:
  // the caller owns them. {-1, -1} with --sandbox=none, or when taken.
  struct EgressFds {
    int proxy = -1;
    int dns = -1;
  };
  EgressFds take_egress_fds();
  // Called when the sandbox goes away, after on_down (any number).
  void also_on_down(std::function<void()> callback);

  // Called once with the exit code when process `pid` ends (at once when it
  // already ended): 0-255, or 128+signo for a signal.
  void on_exit(int pid, std::function<void(int)> callback);
  // Called when the sandbox goes away (stop(), or the agent died).
  std::function<void()> on_down;

 private:
  struct Pending;
  Machine(const boost::asio::any_io_executor& ex, int socket, pid_t agent_pid);
  boost::asio::awaitable<void> read_loop();
  void dispatch(boost::json::object message, std::vector<int> fds);
  void went_down();
  // Sends to the agent in order; when its socket is full (a burst of
  // signals or spawns), queues and drains once it can take more. False
  // only when the agent is gone.
  bool post(boost::json::object message);
  boost::asio::awaitable<void> drain_outbox();

  boost::asio::any_io_executor executor_;
  int socket_;
  pid_t agent_pid_;
  int root_fd_ = -1;
  EgressFds egress_;
  std::vector<std::function<void()>> down_callbacks_;
  struct Watcher;
  std::unique_ptr<Watcher> watcher_;
  std::int64_t next_request_ = 1;
  std::map<std::int64_t, std::shared_ptr<Pending>> pending_;
  std::map<int, std::function<void(int)>> exit_callbacks_;
  std::map<int, int> early_exits_;  // exits heard before anyone asked
  std::shared_ptr<Pending> ready_;
  std::deque<boost::json::object> outbox_;
  bool draining_ = false;
};

}  // namespace spritescript::engine
