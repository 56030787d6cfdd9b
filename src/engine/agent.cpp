#include "engine/agent.hpp"
#include "proto/json_fields.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/agent_protocol.hpp"
#include "engine/sandbox.hpp"

namespace json = boost::json;
namespace protocol = spritescript::engine::agent_protocol;

namespace spritescript::engine {
namespace {

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct SpawnRequest {
  std::vector<std::string> argv;
  std::string path;
  std::vector<std::string> env;
  std::string dir;
  bool tty = false;
  unsigned short rows = 24, cols = 80;
};

using proto::fields::strings_of;

std::string string_of(const json::object& o, const char* key) {
  return proto::fields::text_of(o, key);
}

std::int64_t int_of(const json::object& o, const char* key, std::int64_t fallback) {
  const auto* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : fallback;
}

// Where execve finds `path`: as given when it has a slash, else the first
// executable match on PATH (the caller's, or the default one: supplied env
// replaces the environment but must still resolve the command, spec §16).
// A relative PATH entry counts from `dir`, the directory the command runs in.
std::string resolve(const std::string& path, const std::string& search, const std::string& dir) {
  if (path.find('/') != std::string::npos) return path;
  std::size_t start = 0;
  while (start <= search.size()) {
    std::size_t end = search.find(':', start);
    if (end == std::string::npos) end = search.size();
    std::string entry = search.substr(start, end - start);
    if (entry.empty() || entry.front() != '/') entry = dir + "/" + (entry.empty() ? "." : entry);
    std::string candidate = entry + "/" + path;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return {};
}

// Everything a spawned process needs, made before it is cloned: the child
// shares the agent's memory until it execs (CLONE_VM | CLONE_VFORK), so it
// must not allocate; it only makes system calls on what is here.
struct ChildPlan {
  std::string dir;
  std::string program;  // "" when not found on PATH
  std::string name;     // as asked, for error messages
  std::vector<std::string> env;
  std::vector<char*> argv, envp;
  bool tty = false;
  std::vector<int> fds;  // [stdin, stdout, stderr], or [pty slave]
};

ChildPlan plan_child(const SpawnRequest& r, const std::string& home, bool isolated) {
  ChildPlan plan;
  plan.dir = r.dir.empty() ? home : r.dir;
  plan.name = r.path;
  plan.tty = r.tty;
  std::vector<std::string>& env = plan.env;
  env = r.env;
  auto has = [&env](const std::string& key) {
    const std::string prefix = key + "=";
    for (const auto& e : env) {
      if (e.compare(0, prefix.size(), prefix) == 0) return true;
    }
    return false;
  };
  if (!has("PATH")) env.emplace_back(std::string("PATH=") + kDefaultPath);
  if (!has("HOME")) env.emplace_back("HOME=" + home);
  if (!has("USER")) env.emplace_back("USER=sprite");
  if (!has("LANG")) env.emplace_back("LANG=C.UTF-8");
  if (r.tty && !has("TERM")) env.emplace_back("TERM=xterm-256color");
  if (isolated) {  // the way out is the engine's proxy (docs/networking.md)
    for (const char* const* e = sandbox::proxy_environment(); *e; ++e) {
      std::string entry = *e;
      if (!has(entry.substr(0, entry.find('=')))) env.push_back(entry);
    }
  }
  std::string search = kDefaultPath;
  for (const auto& e : env) {
    if (e.rfind("PATH=", 0) == 0) search = e.substr(5);
  }
  plan.program = resolve(r.path, search, plan.dir);
  for (const auto& a : r.argv) plan.argv.push_back(const_cast<char*>(a.c_str()));
  plan.argv.push_back(nullptr);
  for (const auto& e : plan.env) plan.envp.push_back(const_cast<char*>(e.c_str()));
  plan.envp.push_back(nullptr);
  return plan;
}

// Writes the pieces to stderr, then exits: how the child reports, since it
// may not allocate (no stdio).
[[noreturn]] void child_fails(std::initializer_list<const char*> pieces, int code) {
  for (const char* piece : pieces) {
    if (::write(2, piece, std::strlen(piece)) < 0) break;
  }
  ::_exit(code);
}

// The cloned child: never returns. Errors go to the process's stderr the
// way a shell reports them, with the shell's exit codes (126, 127).
int child_main(void* arg) {
  const ChildPlan& plan = *static_cast<const ChildPlan*>(arg);
  ::setsid();  // its own process group: signals reach its children too
  if (plan.tty) {
    ::ioctl(plan.fds[0], TIOCSCTTY, 0);
    for (int fd = 0; fd < 3; ++fd) ::dup2(plan.fds[0], fd);
  } else {
    for (int fd = 0; fd < 3; ++fd) ::dup2(plan.fds[static_cast<std::size_t>(fd)], fd);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  ::syscall(SYS_close_range, 3U, ~0U, 0U);
  if (::chdir(plan.dir.c_str()) != 0) {
    child_fails({"spritescript: cannot change directory to ", plan.dir.c_str(), ": ",
                 ::strerrordesc_np(errno), "\n"},
                1);
  }
  if (!plan.program.empty()) ::execve(plan.program.c_str(), plan.argv.data(), plan.envp.data());
  const int err = plan.program.empty() ? ENOENT : errno;
  if (err == ENOENT)
    child_fails({"spritescript: ", plan.name.c_str(), ": command not found\n"}, 127);
  child_fails({"spritescript: ", plan.name.c_str(), ": ", ::strerrordesc_np(err), "\n"}, 126);
}

// Starts the planned child and returns its pid (-1 with errno). The child
// shares memory with the agent until it execs, and the agent waits until
// then: no copy of the agent's page tables, which on a VM makes fork cost
// milliseconds (bench/RESULTS.md, "Exec: vfork").
pid_t start_child(ChildPlan& plan) {
  constexpr std::size_t kStack = std::size_t{64} * 1024;
  std::vector<char> stack(kStack);
  char* top = stack.data() + kStack;
  top -= reinterpret_cast<std::uintptr_t>(top) % 16;
  return ::clone(child_main, top, CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
}

class Agent {
 public:
  // `root`: the sprite's root as the filesystem API sees it; its descriptor
  // goes to the engine with "ready", followed by the egress sockets (owned
  // here until then) when the sprite is isolated.
  Agent(int socket, std::string home, std::string root, bool isolated,
        sandbox::EgressSockets egress = {})
      : socket_(socket),
        home_(std::move(home)),
        root_(std::move(root)),
        isolated_(isolated),
        egress_(egress) {}

  int run() {
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    ::sigprocmask(SIG_BLOCK, &mask, nullptr);
    int sigfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd < 0) return 1;
    int root = ::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root < 0) {
      protocol::send(socket_, {{"event", "failed"},
                               {"error", "cannot open the sprite's root: " +
                                             std::string(std::strerror(errno))}});
      return 1;
    }
    std::vector<int> handed_over = {root};
    if (egress_.proxy >= 0) handed_over.insert(handed_over.end(), {egress_.proxy, egress_.dns});
    protocol::send(socket_, {{"event", "ready"}, {"pid", static_cast<std::int64_t>(::getpid())}},
                   handed_over);
    // Closed here: no process in the sprite holds them (nor can accept on them).
    for (int fd : handed_over) ::close(fd);
    for (;;) {
      pollfd fds[2] = {{socket_, POLLIN, 0}, {sigfd, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return 1;
      }
      if (fds[1].revents) {
        signalfd_siginfo info{};
        while (::read(sigfd, &info, sizeof info) > 0) {
        }
        reap();
      }
      if (fds[0].revents) {
        json::object message;
        std::vector<int> received;
        auto result = protocol::receive(socket_, message, received);
        for (int fd : received) ::close(fd);                 // the engine sends us none
        if (result == protocol::Received::closed) return 0;  // engine gone: the sandbox ends
        if (result == protocol::Received::message) handle(message);
      }
    }
  }

 private:
  void handle(const json::object& m) {
    std::string op = string_of(m, "op");
    if (op == "spawn") {
      spawn(m);
    } else if (op == "connect") {
      connect(m);
    } else if (op == "signal") {
      auto pid = static_cast<pid_t>(int_of(m, "pid", 0));
      auto sig = static_cast<int>(int_of(m, "signal", SIGTERM));
      if (pid > 1 && sessions_.count(pid)) {
        if (::kill(-pid, sig) != 0) ::kill(pid, sig);  // group first; the leader if it left
      }
    } else if (op == "freeze" || op == "thaw") {
      const int sig = op == "freeze" ? SIGSTOP : SIGCONT;
      if (isolated_) {
        ::kill(-1, sig);  // everyone in the sandbox but us
      } else {
        // --sandbox=none: -1 would be every process of the host's user.
        for (pid_t pid : sessions_) {
          if (::kill(-pid, sig) != 0) ::kill(pid, sig);
        }
      }
      // With a request id the engine waits until everything has stopped (a
      // checkpoint copies the layer only then).
      if (const auto* req = m.if_contains("req")) {
        if (sig == SIGSTOP) wait_until_stopped();
        protocol::send(socket_, {{"req", *req}});
      }
    }
  }

  // SIGSTOP is asynchronous: a process running on another CPU stops a
  // moment after kill() returns. Polls /proc for up to 2 s.
  void wait_until_stopped() const {
    for (int attempt = 0; attempt < 400; ++attempt) {
      bool all_stopped = true;
      DIR* proc = ::opendir("/proc");
      if (!proc) return;
      while (dirent* entry = ::readdir(proc)) {
        char* end = nullptr;
        long pid = std::strtol(entry->d_name, &end, 10);
        if (*end != '\0' || pid <= 0 || pid == ::getpid()) continue;
        if (!isolated_ && !sessions_.count(static_cast<pid_t>(pid))) continue;
        char state = process_state(static_cast<pid_t>(pid));
        if (state != 'T' && state != 't' && state != 'Z' && state != 'X' && state != '?') {
          all_stopped = false;
          break;
        }
      }
      ::closedir(proc);
      if (all_stopped) return;
      ::usleep(5000);
    }
  }

  static char process_state(pid_t pid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return '?';
    char buffer[512];
    ssize_t n = ::read(fd, buffer, sizeof buffer - 1);
    ::close(fd);
    if (n <= 0) return '?';
    buffer[n] = '\0';
    const char* paren = std::strrchr(buffer, ')');  // the name may contain spaces
    return paren && paren[1] == ' ' ? paren[2] : '?';
  }

  void spawn(const json::object& m) {
    SpawnRequest r;
    r.argv = strings_of(m, "argv");
    r.path = string_of(m, "path");
    r.env = strings_of(m, "env");
    r.dir = string_of(m, "dir");
    const auto* tty = m.if_contains("tty");
    r.tty = tty && tty->is_bool() && tty->as_bool();
    r.rows = static_cast<unsigned short>(int_of(m, "rows", 24));
    r.cols = static_cast<unsigned short>(int_of(m, "cols", 80));
    if (r.path.empty() && !r.argv.empty()) r.path = r.argv[0];
    if (r.path.empty()) r.path = "bash";
    if (r.argv.empty()) r.argv.push_back(r.path);
    json::value req = m.contains("req") ? m.at("req") : json::value(0);

    std::vector<int> parent_ends, child_ends;
    auto fail = [&](const std::string& what) {
      for (int fd : parent_ends) ::close(fd);
      for (int fd : child_ends) ::close(fd);
      protocol::send(socket_, {{"req", req}, {"error", what + ": " + std::strerror(errno)}});
    };
    if (r.tty) {
      int master = -1, slave = -1;
      winsize ws{r.rows, r.cols, 0, 0};
      if (::openpty(&master, &slave, nullptr, nullptr, &ws) != 0) return fail("cannot open a pty");
      ::fcntl(master, F_SETFD, FD_CLOEXEC);
      parent_ends = {master};
      child_ends = {slave};
    } else {
      for (int i = 0; i < 3; ++i) {
        int p[2];
        if (::pipe2(p, O_CLOEXEC) != 0) return fail("cannot create pipes");
        // stdin: the child reads p[0]; stdout/stderr: the child writes p[1].
        parent_ends.push_back(i == 0 ? p[1] : p[0]);
        child_ends.push_back(i == 0 ? p[0] : p[1]);
      }
    }
    ChildPlan plan = plan_child(r, home_, isolated_);
    plan.fds = child_ends;
    pid_t pid = start_child(plan);
    if (pid < 0) return fail("cannot start the process");
    for (int fd : child_ends) ::close(fd);
    sessions_.insert(pid);
    protocol::send(socket_, {{"req", req}, {"pid", pid}}, parent_ends);
    for (int fd : parent_ends) ::close(fd);
  }

  // A TCP connection from inside the sandbox's network namespace (the TCP
  // proxy). Never blocks: the socket is non-blocking, and a connect still in
  // progress goes to the engine as it is ("pending"), which waits for it.
  void connect(const json::object& m) {
    json::value req = m.contains("req") ? m.at("req") : json::value(0);
    std::string host = string_of(m, "host");
    auto port = int_of(m, "port", 0);
    sockaddr_storage address{};
    socklen_t length = 0;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
    if (port < 1 || port > 65535) {
      protocol::send(socket_, {{"req", req}, {"error", "invalid port"}});
      return;
    }
    if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(static_cast<std::uint16_t>(port));
      length = sizeof(sockaddr_in);
    } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(static_cast<std::uint16_t>(port));
      length = sizeof(sockaddr_in6);
    } else {
      protocol::send(socket_, {{"req", req}, {"error", "not an IP address: " + host}});
      return;
    }
    int fd = ::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      protocol::send(socket_, {{"req", req}, {"error", std::string(std::strerror(errno))}});
      return;
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), length) == 0) {
      protocol::send(socket_, {{"req", req}}, {fd});
    } else if (errno == EINPROGRESS) {
      protocol::send(socket_, {{"req", req}, {"pending", true}}, {fd});
    } else {
      protocol::send(socket_, {{"req", req}, {"error", std::string(std::strerror(errno))}});
    }
    ::close(fd);
  }

  void reap() {
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      if (!sessions_.erase(pid)) continue;  // an orphan PID 1 adopted
      int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      protocol::send(socket_, {{"event", "exit"}, {"pid", pid}, {"code", code}});
    }
  }

  int socket_;
  std::string home_;
  std::string root_;
  bool isolated_;
  sandbox::EgressSockets egress_;
  std::set<pid_t> sessions_;
};

}  // namespace

int agent_main(const AgentOptions& options) {
  // The agent, and with it the sandbox, ends when the engine does.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (!options.isolate) {
    // --sandbox=none: plain host processes, HOME in the sprite's directory.
    std::string home = sandbox::host_home(options.sprite_dir);
    ::mkdir((options.sprite_dir + "/fs").c_str(), 0755);
    ::mkdir((options.sprite_dir + "/fs/layer").c_str(), 0755);
    ::mkdir((options.sprite_dir + "/fs/layer/home").c_str(), 0755);
    ::mkdir(home.c_str(), 0755);
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);  // orphans come to us, not to the host's init
    return Agent(options.socket_fd, home, sandbox::host_root(options.sprite_dir), false).run();
  }
  int child;
  try {
    child = sandbox::clone_into_namespaces();
  } catch (const std::exception& e) {
    protocol::send(options.socket_fd, {{"event", "failed"}, {"error", e.what()}});
    return 1;
  }
  if (child == 0) {
    sandbox::EgressSockets egress;
    try {
      sandbox::enter_sprite_root({options.sprite_dir, options.hostname});
      egress = sandbox::open_egress_sockets();
    } catch (const std::exception& e) {
      protocol::send(options.socket_fd, {{"event", "failed"}, {"error", e.what()}});
      return 1;
    }
    return Agent(options.socket_fd, "/home/sprite", "/", true, egress).run();
  }
  // The outer agent: keeps nothing open, waits for PID 1 and ends with it.
  ::close(options.socket_fd);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace spritescript::engine
