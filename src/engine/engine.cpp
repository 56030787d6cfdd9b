#include "engine/engine.hpp"

#include <fcntl.h>
#include <sched.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "engine/api.hpp"
#include "engine/egress.hpp"
#include "engine/fleet.hpp"
#include "engine/http_server.hpp"
#include "engine/store.hpp"
#include "proto/values.hpp"

namespace fs = std::filesystem;

namespace spritescript::engine {
namespace {

constexpr const char* kEngineVersion = "0.1.0";  // Sprite-Version: release form (spec §1.5)

fs::path default_state_dir() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    return fs::path(xdg) / "spritescript" / "engine";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home ? home : ".") / ".local" / "share" / "spritescript" / "engine";
}

// The token clients must send; created once (0600) and kept in the state dir.
std::string load_or_create_token(const fs::path& state_dir) {
  fs::path file = state_dir / "token";
  std::ifstream in(file);
  std::string token;
  if (in && std::getline(in, token) && !token.empty()) return token;
  token = random_hex(32);
  write_file_atomically(file, token + "\n", 0600);
  return token;
}

// One engine per state dir: the serving engine holds an exclusive flock on
// <state>/engine.lock for its whole life (the kernel drops it when the
// process dies, however it dies), and describes itself in engine.json.
class StateLock {
 public:
  explicit StateLock(const fs::path& state_dir)
      : fd_(::open((state_dir / "engine.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600)) {}
  ~StateLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;

  // True when this process now holds the lock (no engine was serving).
  bool try_acquire() { return fd_ >= 0 && ::flock(fd_, LOCK_EX | LOCK_NB) == 0; }

 private:
  int fd_;
};

struct EngineInfo {
  long pid = 0;
  std::string url;
};

std::optional<EngineInfo> read_engine_info(const fs::path& state_dir) {
  std::ifstream in(state_dir / "engine.json");
  std::ostringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  auto doc = boost::json::parse(text.str(), ec);
  if (!in || ec || !doc.is_object()) return std::nullopt;
  const auto& o = doc.as_object();
  EngineInfo info;
  if (const auto* pid = o.if_contains("pid"); pid && pid->is_int64()) info.pid = pid->as_int64();
  if (const auto* url = o.if_contains("url"); url && url->is_string()) {
    info.url = std::string(url->as_string());
  }
  return info;
}

// Is an engine serving state_dir? (The lock says; engine.json says where.)
std::optional<EngineInfo> running_engine(const fs::path& state_dir) {
  StateLock probe(state_dir);
  if (probe.try_acquire()) return std::nullopt;  // released when probe closes
  return read_engine_info(state_dir).value_or(EngineInfo{});
}

// Can this process make a sprite's namespaces? Asked once, in a child, so a
// refusal is one clear line at start rather than a failure at first exec.
std::string namespaces_unavailable() {
  pid_t pid = ::fork();
  if (pid < 0) return "cannot fork";
  if (pid == 0) {
    _exit(::unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS |
                    CLONE_NEWIPC) == 0
              ? 0
              : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {};
  return "this kernel does not let this user create namespaces";
}

// Reaps the engine's children (sprite agents) whenever one ends.
void reap_children(boost::asio::signal_set& sigchld) {
  sigchld.async_wait([&sigchld](const boost::system::error_code& ec, int) {
    if (ec) return;
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    reap_children(sigchld);
  });
}

std::optional<std::chrono::milliseconds> duration_option(const std::string& text) {
  auto d = proto::parse_go_duration(text);
  if (!d || d->count() <= 0) return std::nullopt;
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

}  // namespace

int serve(const ServeOptions& options) {
  auto colon = options.listen.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "spritescript serve: --listen wants HOST:PORT, got '%s'\n",
                 options.listen.c_str());
    return 2;
  }
  std::string host = options.listen.substr(0, colon);
  int port = std::atoi(options.listen.c_str() + colon + 1);
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "spritescript serve: bad port in --listen '%s'\n", options.listen.c_str());
    return 2;
  }
  fs::path state_dir =
      options.state_dir.empty() ? default_state_dir() : fs::path(options.state_dir);
  // A state dir we create is private (0700); an existing one is left as the
  // user made it (never chmod a directory like /tmp given by mistake).
  if (fs::create_directories(state_dir)) {
    fs::permissions(state_dir, fs::perms::owner_all, fs::perm_options::replace);
  }
  StateLock lock(state_dir);
  if (!lock.try_acquire()) {
    auto info = read_engine_info(state_dir).value_or(EngineInfo{});
    std::fprintf(stderr,
                 "spritescript serve: another engine already serves %s (%s, pid %ld); stop it "
                 "with 'spritescript engine stop --state-dir %s'\n",
                 state_dir.c_str(), info.url.c_str(), info.pid, state_dir.c_str());
    return 1;
  }
  auto idle = duration_option(options.idle_timeout);
  auto cold = duration_option(options.cold_timeout);
  if (!idle || !cold) {
    std::fprintf(stderr,
                 "spritescript serve: --idle-timeout and --cold-timeout want a duration like "
                 "30s or 10m\n");
    return 2;
  }
  if (options.isolate) {
    if (std::string why = namespaces_unavailable(); !why.empty()) {
      std::fprintf(stderr,
                   "spritescript serve: cannot sandbox sprites: %s (see docs/engine.md; "
                   "'--sandbox=none' runs them on the host, without isolation)\n",
                   why.c_str());
      return 1;
    }
  } else {
    std::fprintf(stderr,
                 "spritescript serve: WARNING: --sandbox=none: sprites run as plain host "
                 "processes with your user's full access; nothing is isolated\n");
  }
  std::string resolve_error;
  auto egress_options = Egress::parse_options(options.resolve, resolve_error);
  if (!egress_options) {
    std::fprintf(stderr, "spritescript serve: %s\n", resolve_error.c_str());
    return 2;
  }
  std::string token = options.token.empty() ? load_or_create_token(state_dir) : options.token;
  std::error_code stale;
  fs::remove(state_dir / "engine.json", stale);  // left by an engine that was killed

  std::signal(SIGPIPE, SIG_IGN);  // a client or process that went away is an error code
  Store store(state_dir);
  boost::asio::io_context io;
  Fleet fleet(io.get_executor(), store,
              {options.isolate, *idle, *cold, std::max(0, options.auto_checkpoints)});
  std::unique_ptr<Api> api;
  std::unique_ptr<HttpServer> server;
  try {
    server = std::make_unique<HttpServer>(
        io, host, static_cast<std::uint16_t>(port),
        [&api](HttpExchange& exchange) { return api->serve(exchange); },
        Headers{{"Sprite-Version", kEngineVersion}});
  } catch (const boost::system::system_error& e) {
    std::fprintf(stderr, "spritescript serve: cannot listen on %s: %s\n", options.listen.c_str(),
                 e.code().message().c_str());
    return 1;
  }
  api = std::make_unique<Api>(store, token, server->port(), &fleet);
  Egress egress(fleet, api->network_policies(), std::move(*egress_options));

  if (host != "127.0.0.1" && host != "::1" && host != "localhost") {
    std::fprintf(stderr,
                 "spritescript serve: warning: listening on %s, not loopback: anyone who can "
                 "reach it and has the token controls these sprites\n",
                 host.c_str());
  }
  boost::asio::signal_set sigchld(io, SIGCHLD);
  reap_children(sigchld);
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](const boost::system::error_code&, int) { io.stop(); });
  const std::string url = "http://" + host + ":" + std::to_string(server->port());
  boost::json::object info{
      {"pid", static_cast<std::int64_t>(::getpid())}, {"url", url}, {"version", kEngineVersion}};
  write_file_atomically(state_dir / "engine.json", boost::json::serialize(info) + "\n", 0600);
  std::printf("listening on %s (state dir %s, %zu sprites)\n", url.c_str(), state_dir.c_str(),
              store.size());
  std::fflush(stdout);
  io.run();
  // Stop every sandbox, then leave without unwinding: suspended request
  // coroutines still reference the fleet, and nothing else needs tearing
  // down (the store is on disk, the lock goes with the process).
  fleet.stop_all();
  std::error_code ignored;
  fs::remove(state_dir / "engine.json", ignored);
  std::fflush(nullptr);
  std::_Exit(0);
}

}  // namespace spritescript::engine

namespace spritescript::engine {

namespace {

constexpr std::uintmax_t kLogRotateBytes = std::uintmax_t{8} * 1024 * 1024;

// Starts `spritescript serve --state-dir DIR` detached from this process
// (own session, stdin /dev/null, output appended to <state>/engine.log).
void start_engine_in_background(const fs::path& state_dir) {
  fs::create_directories(state_dir);
  const fs::path log = state_dir / "engine.log";
  std::error_code ec;
  if (fs::file_size(log, ec) > kLogRotateBytes && !ec)
    fs::rename(log, state_dir / "engine.log.1", ec);
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("cannot start the local engine: fork failed");
  if (pid > 0) {
    // The intermediate child exits at once; the engine is re-parented, so
    // this process never has to reap it.
    ::waitpid(pid, nullptr, 0);
    return;
  }
  ::setsid();
  if (::fork() != 0) _exit(0);
  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (null < 0 || out < 0) _exit(1);
  ::dup2(null, 0);
  ::dup2(out, 1);
  ::dup2(out, 2);
  std::string dir = state_dir.string();
  const char* argv[] = {"spritescript", "serve", "--state-dir", dir.c_str(), nullptr};
  ::execv("/proc/self/exe", const_cast<char* const*>(argv));
  _exit(127);
}

std::string read_token(const fs::path& state_dir) {
  std::ifstream in(state_dir / "token");
  std::string token;
  std::getline(in, token);
  return token;
}

}  // namespace

LocalEngine ensure_local_engine(const std::string& state_dir_option, bool notice) {
  fs::path state_dir = state_dir_option.empty() ? default_state_dir() : fs::path(state_dir_option);
  bool started = false;
  // Two clients may race here: both start an engine, the state dir's lock
  // lets one serve, the other exits at once, and both find the winner.
  for (int i = 0; i < 500; ++i) {
    auto engine = fs::is_directory(state_dir) ? running_engine(state_dir) : std::nullopt;
    if (engine && !engine->url.empty() && engine->pid > 0 &&
        ::kill(static_cast<pid_t>(engine->pid), 0) == 0) {
      if (notice) {
        std::fprintf(stderr,
                     "spritescript: no Sprites token set; using the local engine at %s (state "
                     "dir %s)\n",
                     engine->url.c_str(), state_dir.c_str());
      }
      return {engine->url, read_token(state_dir), engine->pid, state_dir.string(), started};
    }
    if (!engine && !started) {
      start_engine_in_background(state_dir);
      started = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("the local engine did not start within 10 s; see " +
                           (state_dir / "engine.log").string());
}

int engine_command(const std::string& subcommand, const std::string& state_dir_option) {
  fs::path state_dir = state_dir_option.empty() ? default_state_dir() : fs::path(state_dir_option);
  if (subcommand == "start") {
    try {
      LocalEngine engine = ensure_local_engine(state_dir.string(), false);
      std::printf("%s at %s (pid %ld, state dir %s)\n", engine.started ? "started" : "running",
                  engine.url.c_str(), engine.pid, engine.state_dir.c_str());
      return 0;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "spritescript engine start: %s\n", e.what());
      return 1;
    }
  }
  if (subcommand == "logs") {
    std::ifstream in(state_dir / "engine.log");
    if (!in) {
      std::fprintf(stderr,
                   "spritescript engine logs: no log in %s (only an engine started in the "
                   "background writes one)\n",
                   state_dir.c_str());
      return 1;
    }
    std::cout << in.rdbuf();
    return 0;
  }
  auto engine = fs::is_directory(state_dir) ? running_engine(state_dir) : std::nullopt;
  if (subcommand == "status") {
    if (!engine) {
      std::printf("not running (state dir %s)\n", state_dir.c_str());
      return 3;  // systemctl's "inactive"
    }
    std::printf("running at %s (pid %ld, state dir %s)\n", engine->url.c_str(), engine->pid,
                state_dir.c_str());
    return 0;
  }
  // stop: SIGTERM, then wait until the engine has let go of its state dir.
  if (!engine) {
    std::printf("not running (state dir %s)\n", state_dir.c_str());
    return 0;
  }
  if (engine->pid <= 0 || ::kill(static_cast<pid_t>(engine->pid), SIGTERM) != 0) {
    std::fprintf(stderr, "spritescript engine stop: cannot signal the engine (pid %ld)\n",
                 engine->pid);
    return 1;
  }
  for (int i = 0; i < 200; ++i) {
    if (!running_engine(state_dir)) {
      std::printf("stopped (pid %ld)\n", engine->pid);
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::fprintf(stderr, "spritescript engine stop: the engine (pid %ld) did not stop within 10 s\n",
               engine->pid);
  return 1;
}

}  // namespace spritescript::engine
