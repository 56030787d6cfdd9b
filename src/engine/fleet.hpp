// The engine's running sprites: each sprite's sandbox (Machine), its exec
// sessions, and its lifecycle (spec §2.1.1):
//
//   cold     no sandbox; processes gone; the writable layer is on disk
//   running  sandbox up
//   warm     sandbox up, every process stopped (SIGSTOP): memory kept
//
// running -> warm after `idle_timeout` with no client attached and no
// request in flight; warm -> cold after `cold_timeout` more. Any exec (or
// other request that needs the sandbox) wakes it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/machine.hpp"
#include "engine/session.hpp"
#include "util/async_mutex.hpp"

namespace spritescript::engine {

using util::AsyncMutex;

class Store;

class Fleet {
 public:
  struct Options {
    bool isolate = true;  // false: --sandbox=none
    std::chrono::milliseconds idle_timeout{30'000};
    std::chrono::milliseconds cold_timeout{10 * 60'000};
    int auto_checkpoints = 3;  // taken when an idle sprite pauses, newest kept; 0: off
  };

  Fleet(boost::asio::any_io_executor ex, Store& store, Options options);
  ~Fleet();

  // "cold" | "warm" | "running".
  std::string status(const std::string& name) const;
  std::optional<std::string> last_running_at(const std::string& name) const;
  // The sprite's sandbox when it is up (running or warm), without waking it.
  std::shared_ptr<Machine> machine(const std::string& name) const;
  // Counts the sprite's starts and thaws: work that needs it to stay paused
  // compares the count before and after.
  std::uint64_t wakes(const std::string& name) const;
  const boost::asio::any_io_executor& executor() const { return executor_; }
  const Options& options() const { return options_; }

  // Keeps a sprite awake (no idle countdown) while alive: one per request
  // or attached client that needs the sandbox.
  class Hold {
   public:
    Hold(Fleet* fleet, std::string name);
    ~Hold();
    Hold(Hold&& other) noexcept;
    Hold& operator=(Hold&&) = delete;
    Hold(const Hold&) = delete;

   private:
    Fleet* fleet_;
    std::string name_;
  };
  Hold hold(const std::string& name);

  // The sprite's sandbox, started (cold) or thawed (warm) as needed. Throws
  // std::runtime_error with a one-line reason when it cannot start.
  boost::asio::awaitable<std::shared_ptr<Machine>> wake(const std::string& name);
  // wake() without the exception, for request handlers that answer it
  // themselves: the machine, or nullptr and the one-line reason.
  struct Woken {
    std::shared_ptr<Machine> machine;
    std::string failure;
  };
  boost::asio::awaitable<Woken> try_wake(const std::string& name);
  // Stops the sprite's sandbox; every process and session ends (cold).
  void stop(const std::string& name);

  // Held while something replaces the sprite's filesystem (restore): the
  // sandbox is stopped and stays down, and wake() waits, until it is gone.
  class Down {
   public:
    Down(Down&& other) noexcept;
    Down& operator=(Down&&) = delete;
    Down(const Down&) = delete;
    ~Down();

   private:
    friend class Fleet;
    explicit Down(std::shared_ptr<AsyncMutex> lock) : lock_(std::move(lock)) {}
    std::shared_ptr<AsyncMutex> lock_;
  };
  boost::asio::awaitable<Down> take_down(const std::string& name);

  // Serialises changes to the sprite's writable layer that must not overlap:
  // a checkpoint's copy, a restore, and writes of the filesystem API.
  AsyncMutex& layer_lock(const std::string& name);

  // Called when an idle sprite has just been paused (running -> warm).
  std::function<void(const std::string& name)> on_paused;

  // Called first when a sprite's sandbox has started from cold, before
  // on_started: the egress path attaches here, so services have a network.
  std::function<void(const std::string& name, const std::shared_ptr<Machine>& machine)>
      on_machine_up;
  // Called after a sprite's sandbox started from cold (services start here).
  std::function<void(const std::string& name, const std::shared_ptr<Machine>& machine)> on_started;
  // Stops every sandbox (the engine is shutting down).
  void stop_all();
  // stop(), and forget the sprite (it was deleted).
  void forget(const std::string& name);

  void add_session(const std::string& name, std::shared_ptr<Session> session);
  std::shared_ptr<Session> session(const std::string& name, int id) const;
  std::vector<std::shared_ptr<Session>> sessions(const std::string& name) const;
  // Did session `id` exist and end lately? (The kill endpoint answers 410.)
  bool recently_finished(const std::string& name, int id) const;

  // Called with the sprite's name after each status change (list watch).
  using StatusObserver = std::function<void(const std::string& name)>;
  std::uint64_t observe(StatusObserver observer);
  void unobserve(std::uint64_t id);
  // Tells the observers (also for a created or deleted sprite).
  void notify(const std::string& name);

 private:
  struct Runtime;
  std::shared_ptr<Runtime> runtime(const std::string& name);
  const Runtime* find(const std::string& name) const;
  void update_idle(const std::string& name);

  boost::asio::any_io_executor executor_;
  Store& store_;
  Options options_;
  std::map<std::string, std::shared_ptr<Runtime>> runtimes_;
  std::map<std::uint64_t, StatusObserver> observers_;
  std::uint64_t next_observer_ = 1;
};

}  // namespace spritescript::engine
