#include "engine/fleet.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <stdexcept>

#include "engine/store.hpp"
#include "proto/values.hpp"

namespace asio = boost::asio;

namespace spritescript::engine {

constexpr std::size_t kFinishedIdsKept = 256;

struct Fleet::Runtime {
  explicit Runtime(const asio::any_io_executor& ex)
      : idle_timer(ex), wake_lock(std::make_shared<AsyncMutex>(ex)), layer_lock(ex) {}
  std::shared_ptr<Machine> machine;
  bool frozen = false;
  int holds = 0;
  asio::steady_timer idle_timer;
  std::shared_ptr<AsyncMutex> wake_lock;  // one start at a time; held by a Down
  AsyncMutex layer_lock;
  std::map<int, std::shared_ptr<Session>> sessions;
  std::deque<int> finished;
  std::optional<std::string> last_running_at;
  std::uint64_t wakes = 0;
};

Fleet::Fleet(asio::any_io_executor ex, Store& store, Options options)
    : executor_(std::move(ex)), store_(store), options_(options) {}

Fleet::~Fleet() {
  stop_all();
}

void Fleet::stop_all() {
  for (const auto& [name, rt] : runtimes_) stop(name);
}

std::shared_ptr<Fleet::Runtime> Fleet::runtime(const std::string& name) {
  auto& slot = runtimes_[name];
  if (!slot) slot = std::make_shared<Runtime>(executor_);
  return slot;
}

const Fleet::Runtime* Fleet::find(const std::string& name) const {
  auto it = runtimes_.find(name);
  return it == runtimes_.end() ? nullptr : it->second.get();
}

std::string Fleet::status(const std::string& name) const {
  const Runtime* rt = find(name);
  if (!rt || !rt->machine || !rt->machine->up()) return "cold";
  return rt->frozen ? "warm" : "running";
}

std::optional<std::string> Fleet::last_running_at(const std::string& name) const {
  const Runtime* rt = find(name);
  return rt ? rt->last_running_at : std::nullopt;
}

std::shared_ptr<Machine> Fleet::machine(const std::string& name) const {
  const Runtime* rt = find(name);
  return rt && rt->machine && rt->machine->up() ? rt->machine : nullptr;
}

std::uint64_t Fleet::wakes(const std::string& name) const {
  const Runtime* rt = find(name);
  return rt ? rt->wakes : 0;
}

Fleet::Hold::Hold(Fleet* fleet, std::string name) : fleet_(fleet), name_(std::move(name)) {
  auto rt = fleet_->runtime(name_);
  ++rt->holds;
  rt->idle_timer.cancel();
}

Fleet::Hold::Hold(Hold&& other) noexcept : fleet_(other.fleet_), name_(std::move(other.name_)) {
  other.fleet_ = nullptr;
}

Fleet::Hold::~Hold() {
  if (!fleet_) return;
  auto it = fleet_->runtimes_.find(name_);
  if (it == fleet_->runtimes_.end()) return;  // the sprite was deleted meanwhile
  --it->second->holds;
  try {
    fleet_->update_idle(name_);
  } catch (...) {  // a timer that cannot be armed: the sprite just stays awake
  }
}

Fleet::Hold Fleet::hold(const std::string& name) {
  return {this, name};
}

void Fleet::update_idle(const std::string& name) {
  auto it = runtimes_.find(name);
  if (it == runtimes_.end()) return;
  Runtime& rt = *it->second;
  if (rt.holds > 0 || !rt.machine || !rt.machine->up()) return;
  for (const auto& [id, session] : rt.sessions) {
    if (session->attached()) return;
  }
  // running -> warm after idle_timeout, warm -> cold after cold_timeout.
  rt.idle_timer.expires_after(rt.frozen ? options_.cold_timeout : options_.idle_timeout);
  rt.idle_timer.async_wait([this, name](boost::system::error_code ec) {
    if (ec) return;
    auto it = runtimes_.find(name);
    if (it == runtimes_.end()) return;
    Runtime& rt = *it->second;
    if (rt.holds > 0 || !rt.machine) return;
    if (!rt.frozen) {
      rt.machine->freeze();
      rt.frozen = true;
      notify(name);
      update_idle(name);
      if (on_paused) on_paused(name);
    } else {
      stop(name);
    }
  });
}

asio::awaitable<std::shared_ptr<Machine>> Fleet::wake(const std::string& name) {
  auto keep = runtime(name);  // alive across the awaits, even if forgotten meanwhile
  Runtime& rt = *keep;
  rt.idle_timer.cancel();
  auto wake_lock = rt.wake_lock;
  co_await wake_lock->lock();
  struct Unlock {
    AsyncMutex& m;
    ~Unlock() { m.unlock(); }
  } unlock{*wake_lock};
  if (rt.machine && rt.machine->up()) {
    if (rt.frozen) {
      rt.machine->thaw();
      rt.frozen = false;
      ++rt.wakes;
      notify(name);
    }
    update_idle(name);
    co_return rt.machine;
  }
  Machine::Config config{store_.dir(name).string(), name, options_.isolate};
  auto machine = co_await Machine::start(executor_, config);
  // The sprite may have been deleted while it started.
  auto it = runtimes_.find(name);
  if (it == runtimes_.end() || it->second != keep || !store_.get(name)) {
    machine->stop();
    throw std::runtime_error("the sprite was deleted");
  }
  machine->on_down = [this, name]() {
    auto it = runtimes_.find(name);
    if (it == runtimes_.end()) return;
    it->second->machine.reset();
    it->second->frozen = false;
    notify(name);
  };
  rt.machine = machine;
  rt.frozen = false;
  ++rt.wakes;
  rt.last_running_at = proto::format_rfc3339(std::chrono::system_clock::now());
  notify(name);
  update_idle(name);
  if (on_machine_up) on_machine_up(name, machine);
  if (on_started) on_started(name, machine);
  co_return machine;
}

asio::awaitable<Fleet::Woken> Fleet::try_wake(const std::string& name) {
  Woken woken;
  try {
    woken.machine = co_await wake(name);
  } catch (const std::exception& e) {
    woken.failure = e.what();  // (no co_await inside a handler)
  }
  co_return woken;
}

void Fleet::stop(const std::string& name) {
  auto it = runtimes_.find(name);
  if (it == runtimes_.end()) return;
  Runtime& rt = *it->second;
  rt.idle_timer.cancel();
  rt.frozen = false;
  if (auto machine = std::move(rt.machine)) {
    machine->on_down = nullptr;
    machine->stop();
    notify(name);
  }
}

Fleet::Down::Down(Down&& other) noexcept : lock_(std::move(other.lock_)) {}

Fleet::Down::~Down() {
  if (lock_) lock_->unlock();
}

asio::awaitable<Fleet::Down> Fleet::take_down(const std::string& name) {
  auto lock = runtime(name)->wake_lock;
  co_await lock->lock();
  Down down(lock);
  stop(name);
  co_return down;
}

AsyncMutex& Fleet::layer_lock(const std::string& name) {
  return runtime(name)->layer_lock;
}

std::uint64_t Fleet::observe(StatusObserver observer) {
  observers_[next_observer_] = std::move(observer);
  return next_observer_++;
}

void Fleet::unobserve(std::uint64_t id) {
  observers_.erase(id);
}

void Fleet::notify(const std::string& name) {
  auto observers = observers_;  // an observer may unobserve itself
  for (const auto& [id, observer] : observers) observer(name);
}

void Fleet::forget(const std::string& name) {
  stop(name);
  runtimes_.erase(name);
}

void Fleet::add_session(const std::string& name, std::shared_ptr<Session> session) {
  Runtime& rt = *runtime(name);
  int id = session->id();
  session->on_finished = [this, name, id](int) {
    auto it = runtimes_.find(name);
    if (it == runtimes_.end()) return;
    Runtime& rt = *it->second;
    rt.sessions.erase(id);
    rt.finished.push_back(id);
    if (rt.finished.size() > kFinishedIdsKept) rt.finished.pop_front();
    update_idle(name);
  };
  rt.sessions[id] = std::move(session);
}

std::shared_ptr<Session> Fleet::session(const std::string& name, int id) const {
  const Runtime* rt = find(name);
  if (!rt) return nullptr;
  auto it = rt->sessions.find(id);
  return it == rt->sessions.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<Session>> Fleet::sessions(const std::string& name) const {
  std::vector<std::shared_ptr<Session>> out;
  if (const Runtime* rt = find(name)) {
    for (const auto& [id, s] : rt->sessions) out.push_back(s);
  }
  return out;
}

bool Fleet::recently_finished(const std::string& name, int id) const {
  const Runtime* rt = find(name);
  if (!rt) return false;
  for (int f : rt->finished) {
    if (f == id) return true;
  }
  return false;
}

}  // namespace spritescript::engine
