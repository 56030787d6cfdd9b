#include "engine/machine.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "engine/agent_protocol.hpp"

namespace asio = boost::asio;
namespace json = boost::json;
namespace protocol = spritescript::engine::agent_protocol;

namespace spritescript::engine {
namespace {
constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kAgentStartTimeout = std::chrono::seconds(20);
}  // namespace

// A reply someone awaits: the timer is the wake-up (cancelled on arrival).
struct Machine::Pending {
  explicit Pending(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  bool done = false;
  json::object message;
  std::vector<int> fds;

  void fulfil(json::object m, std::vector<int> f) {
    done = true;
    message = std::move(m);
    fds = std::move(f);
    timer.cancel();
  }
  asio::awaitable<void> wait(asio::steady_timer::duration limit) {
    if (done) co_return;
    timer.expires_after(limit);
    co_await timer.async_wait(kAsTuple);
  }
};

struct Machine::Watcher {
  explicit Watcher(const asio::any_io_executor& ex, int fd) : descriptor(ex, fd) {}
  asio::posix::stream_descriptor descriptor;
};

Machine::Machine(const asio::any_io_executor& ex, int socket, pid_t agent_pid)
    : executor_(ex),
      socket_(socket),
      agent_pid_(agent_pid),
      watcher_(std::make_unique<Watcher>(ex, socket)) {}

Machine::~Machine() {
  stop();
  if (root_fd_ >= 0) ::close(root_fd_);
  if (egress_.proxy >= 0) ::close(egress_.proxy);
  if (egress_.dns >= 0) ::close(egress_.dns);
}

Machine::EgressFds Machine::take_egress_fds() {
  return std::exchange(egress_, EgressFds{});
}

void Machine::also_on_down(std::function<void()> callback) {
  if (socket_ < 0) {
    callback();
    return;
  }
  down_callbacks_.push_back(std::move(callback));
}

asio::awaitable<std::shared_ptr<Machine>> Machine::start(asio::any_io_executor ex, Config config) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
    throw std::runtime_error(std::string("cannot create the agent's socket: ") +
                             std::strerror(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pair[1], 3);  // dup2 clears close-on-exec
  std::vector<std::string> args = {"spritescript",    "agent",      "--sprite-dir",
                                   config.sprite_dir, "--hostname", config.hostname};
  if (!config.isolate) args.emplace_back("--sandbox=none");
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pair[1]);
  if (rc != 0) {
    ::close(pair[0]);
    throw std::runtime_error(std::string("cannot start the sprite's agent: ") + std::strerror(rc));
  }
  std::shared_ptr<Machine> machine(new Machine(ex, pair[0], pid));
  machine->ready_ = std::make_shared<Pending>(ex);
  auto ready = machine->ready_;
  asio::co_spawn(ex, machine->read_loop(), asio::detached);
  co_await ready->wait(kAgentStartTimeout);
  machine->ready_.reset();
  const auto* event = ready->message.if_contains("event");
  if (ready->done && event && event->is_string() && event->as_string() == "ready" &&
      (ready->fds.size() == 1 || ready->fds.size() == 3)) {
    machine->root_fd_ = ready->fds[0];
    if (ready->fds.size() == 3) machine->egress_ = {ready->fds[1], ready->fds[2]};
    ready->fds.clear();
    co_return machine;
  }
  for (int fd : ready->fds) ::close(fd);
  std::string why = "the sprite's agent did not start within 20 s";
  if (const auto* e = ready->message.if_contains("error"); e && e->is_string()) {
    why = std::string(e->as_string());
  } else if (ready->done) {
    why = "the sprite's agent exited while starting";
  }
  machine->stop();
  throw std::runtime_error(why);
}

asio::awaitable<void> Machine::read_loop() {
  auto self = shared_from_this();
  ::fcntl(socket_, F_SETFL, ::fcntl(socket_, F_GETFL) | O_NONBLOCK);
  while (socket_ >= 0) {
    json::object message;
    std::vector<int> fds;
    auto result = protocol::receive(socket_, message, fds);
    if (result == protocol::Received::would_block) {
      auto [ec] = co_await watcher_->descriptor.async_wait(
          asio::posix::stream_descriptor::wait_read, kAsTuple);
      if (ec) break;
      continue;
    }
    if (result == protocol::Received::closed) break;
    if (result == protocol::Received::malformed) {
      for (int fd : fds) ::close(fd);
      continue;
    }
    dispatch(std::move(message), std::move(fds));
  }
  went_down();
}

void Machine::dispatch(json::object message, std::vector<int> fds) {
  if (const auto* event = message.if_contains("event"); event && event->is_string()) {
    if (event->as_string() == "exit") {
      int pid = static_cast<int>(message.at("pid").to_number<std::int64_t>());
      int code = static_cast<int>(message.at("code").to_number<std::int64_t>());
      auto it = exit_callbacks_.find(pid);
      if (it == exit_callbacks_.end()) {
        early_exits_[pid] = code;
      } else {
        auto callback = std::move(it->second);
        exit_callbacks_.erase(it);
        callback(code);
      }
    } else if (ready_) {  // ready or failed
      ready_->fulfil(std::move(message), std::move(fds));
    }
    return;
  }
  if (const auto* req = message.if_contains("req"); req && req->is_int64()) {
    auto it = pending_.find(req->as_int64());
    if (it != pending_.end()) {
      auto pending = it->second;
      pending_.erase(it);
      pending->fulfil(std::move(message), std::move(fds));
      return;
    }
  }
  for (int fd : fds) ::close(fd);
}

asio::awaitable<Spawned> Machine::spawn(const SpawnSpec& spec) {
  if (socket_ < 0) throw std::runtime_error("the sprite's sandbox is not running");
  json::array argv, env;
  for (const auto& a : spec.argv) argv.emplace_back(a);
  for (const auto& e : spec.env) env.emplace_back(e);
  std::int64_t req = next_request_++;
  json::object message{{"op", "spawn"},     {"req", req},        {"argv", argv},
                       {"path", spec.path}, {"env", env},        {"dir", spec.dir},
                       {"tty", spec.tty},   {"rows", spec.rows}, {"cols", spec.cols}};
  auto pending = std::make_shared<Pending>(executor_);
  pending_[req] = pending;
  if (!post(std::move(message))) {
    pending_.erase(req);
    throw std::runtime_error("the sprite's agent is not answering");
  }
  co_await pending->wait(std::chrono::seconds(30));
  if (!pending->done) {
    pending_.erase(req);
    throw std::runtime_error("the sprite's agent did not answer a spawn within 30 s");
  }
  if (const auto* e = pending->message.if_contains("error"); e && e->is_string()) {
    for (int fd : pending->fds) ::close(fd);
    throw std::runtime_error(std::string(e->as_string()));
  }
  std::size_t expected = spec.tty ? 1 : 3;
  if (pending->fds.size() != expected) {
    for (int fd : pending->fds) ::close(fd);
    throw std::runtime_error("the sprite's agent sent a malformed spawn reply");
  }
  co_return Spawned{static_cast<int>(pending->message.at("pid").to_number<std::int64_t>()),
                    std::move(pending->fds)};
}

asio::awaitable<Connected> Machine::connect(const std::string& ip, int port) {
  if (socket_ < 0) throw std::runtime_error("the sprite's sandbox is not running");
  std::int64_t req = next_request_++;
  json::object message;
  message["op"] = "connect";
  message["req"] = req;
  message["host"] = ip;
  message["port"] = port;
  auto pending = std::make_shared<Pending>(executor_);
  pending_[req] = pending;
  if (!post(std::move(message))) {
    pending_.erase(req);
    throw std::runtime_error("the sprite's agent is not answering");
  }
  co_await pending->wait(std::chrono::seconds(10));
  if (!pending->done) {
    pending_.erase(req);
    throw std::runtime_error(socket_ < 0
                                 ? "the sprite's sandbox stopped"
                                 : "the sprite's agent did not answer a connect within 10 s");
  }
  if (const auto* e = pending->message.if_contains("error"); e && e->is_string()) {
    for (int fd : pending->fds) ::close(fd);
    throw std::runtime_error(std::string(e->as_string()));
  }
  if (pending->fds.size() != 1) {
    for (int fd : pending->fds) ::close(fd);
    throw std::runtime_error("the sprite's agent sent a malformed connect reply");
  }
  Connected connected;
  connected.fd = pending->fds[0];
  const auto* in_progress = pending->message.if_contains("pending");
  connected.in_progress = in_progress && in_progress->is_bool() && in_progress->as_bool();
  co_return connected;
}

void Machine::on_exit(int pid, std::function<void(int)> callback) {
  if (auto it = early_exits_.find(pid); it != early_exits_.end()) {
    int code = it->second;
    early_exits_.erase(it);
    callback(code);
    return;
  }
  exit_callbacks_[pid] = std::move(callback);
}

void Machine::signal(int pid, int signo) {
  post({{"op", "signal"}, {"pid", pid}, {"signal", signo}});
}

void Machine::freeze() {
  post({{"op", "freeze"}});
}

asio::awaitable<void> Machine::freeze_and_wait() {
  if (socket_ < 0) co_return;
  std::int64_t req = next_request_++;
  json::object message{{"op", "freeze"}, {"req", req}};
  auto pending = std::make_shared<Pending>(executor_);
  pending_[req] = pending;
  if (!post(std::move(message))) {
    pending_.erase(req);
    co_return;
  }
  co_await pending->wait(std::chrono::seconds(5));
  if (!pending->done) pending_.erase(req);
}

void Machine::thaw() {
  post({{"op", "thaw"}});
}

bool Machine::post(json::object message) {
  if (socket_ < 0) return false;
  if (outbox_.empty()) {
    auto sent = protocol::try_send(socket_, message);
    if (sent == protocol::Sent::ok) return true;
    if (sent == protocol::Sent::failed) return false;
  }
  // Never dropped: a lost signal leaves a process running that the user
  // asked to stop (1,000 KILLs at once filled the socket).
  outbox_.push_back(std::move(message));
  if (!draining_) {
    draining_ = true;
    asio::co_spawn(executor_, drain_outbox(), asio::detached);
  }
  return true;
}

asio::awaitable<void> Machine::drain_outbox() {
  auto self = shared_from_this();
  while (socket_ >= 0 && !outbox_.empty()) {
    auto sent = protocol::try_send(socket_, outbox_.front());
    if (sent == protocol::Sent::ok) {
      outbox_.pop_front();
      continue;
    }
    if (sent == protocol::Sent::failed) break;
    auto [ec] = co_await watcher_->descriptor.async_wait(asio::posix::stream_descriptor::wait_write,
                                                         kAsTuple);
    if (ec) break;
  }
  outbox_.clear();
  draining_ = false;
}

void Machine::stop() {
  if (socket_ >= 0) went_down();
}

void Machine::went_down() {
  if (socket_ >= 0) {
    // Closing our end makes PID 1 exit, which takes the whole pid namespace
    // down; SIGKILL to the outer agent covers an agent that stopped reading.
    // (The engine's SIGCHLD handler reaps it.)
    boost::system::error_code ignored;
    watcher_->descriptor.close(ignored);
    socket_ = -1;
    if (agent_pid_ > 0) ::kill(agent_pid_, SIGKILL);
    agent_pid_ = 0;
  }
  for (auto& [req, pending] : pending_) pending->timer.cancel();
  pending_.clear();
  // Every process died with the sandbox: tell their sessions (killed).
  auto callbacks = std::move(exit_callbacks_);
  exit_callbacks_.clear();
  for (auto& [pid, callback] : callbacks) callback(128 + SIGKILL);
  if (ready_) ready_->timer.cancel();
  if (on_down) {
    auto down = std::move(on_down);
    on_down = nullptr;
    down();
  }
  auto callbacks_down = std::move(down_callbacks_);
  down_callbacks_.clear();
  for (auto& callback : callbacks_down) callback();
}

}  // namespace spritescript::engine
