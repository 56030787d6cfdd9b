#include "engine/services.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "engine/api.hpp"
#include "engine/fleet.hpp"
#include "engine/machine.hpp"
#include "engine/sprite_dir.hpp"
#include "engine/store.hpp"
#include "proto/signals.hpp"
#include "proto/values.hpp"
#include "util/async_mutex.hpp"

namespace json = boost::json;
namespace fs = std::filesystem;

namespace spritescript::engine {
namespace {

using Clock = std::chrono::steady_clock;
using SysClock = std::chrono::system_clock;
using Millis = std::chrono::milliseconds;
using util::AsyncMutex;

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

constexpr Millis kDefaultDuration{5'000};      // how long create/start/restart stream (spec §11.2)
constexpr Millis kDefaultStopTimeout{10'000};  // TERM, then KILL after this
constexpr Millis kKillWait{5'000};             // after KILL, how long to wait for the exit
constexpr Millis kDrainWait{250};       // after an exit, how long its output may still trickle in
constexpr Millis kBackoffFirst{1'000};  // restart delays: 1 s, 2 s, 4 s ... capped
constexpr Millis kBackoffCap{60'000};
constexpr Millis kStableRun{10'000};       // a run this long resets the backoff
constexpr Millis kWarmRetry{500};          // a restart due while the sprite is warm waits for it
constexpr std::size_t kRingEvents = 1000;  // per service, for `logs`
constexpr std::size_t kRingBytes = std::size_t{256} * 1024;
constexpr std::size_t kWatcherLines = 4096;  // a stream's backlog (a slow client loses the oldest)
constexpr std::uint64_t kLogLimit = std::uint64_t{1} << 20;  // a .log rotates to .log.1 past this
constexpr std::size_t kReadSize = std::size_t{16} * 1024;
constexpr const char* kInSpriteLogs = "/.sprite/logs/services/";
constexpr const char* kServicesFile = "services.json";

// ---- small helpers (JSON built outside coroutines: GCC 12) ------------------

std::int64_t now_ms() {
  return std::chrono::duration_cast<Millis>(SysClock::now().time_since_epoch()).count();
}

std::string event_line(std::string_view type, std::optional<std::string_view> data = std::nullopt,
                       std::optional<int> exit_code = std::nullopt) {
  json::object o;
  o["type"] = type;
  if (data) o["data"] = *data;
  if (exit_code) o["exit_code"] = *exit_code;
  o["timestamp"] = now_ms();
  return json::serialize(o) + "\n";
}

std::string log_path_in_sprite(const std::string& service) {
  return kInSpriteLogs + service + ".log";
}

std::string complete_line(const std::string& service) {
  const std::string path = log_path_in_sprite(service);
  json::object files;
  files["combined"] = path;
  files["stderr"] = path;
  files["stdout"] = path;
  json::object o;
  o["type"] = "complete";
  o["log_files"] = std::move(files);
  o["timestamp"] = now_ms();
  return json::serialize(o) + "\n";
}

std::string describe_exit(int code) {
  if (code > 128 && code < 128 + 65) {
    return "killed by " + proto::signal_name(code - 128) + " (exit code " + std::to_string(code) +
           ")";
  }
  return "exited with code " + std::to_string(code);
}

// Service names become file names (<name>.log) and path segments.
std::string check_service_name(const std::string& name) {
  if (name.empty() || name.size() > 63) return "a service name has 1 to 63 characters";
  if (name == "signal") return "'signal' is reserved";
  auto alnum = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  };
  if (!alnum(name.front())) return "a service name starts with a letter or a digit";
  for (char c : name) {
    if (!alnum(c) && c != '-' && c != '_' && c != '.') {
      return "a service name has only letters, digits, '-', '_' and '.'";
    }
  }
  return "";
}

// Up to the end of the last complete UTF-8 sequence: a read may end inside one.
std::size_t utf8_complete(std::string_view s) {
  std::size_t n = s.size();
  for (std::size_t back = 1; back <= 3 && back <= n; ++back) {
    auto c = static_cast<unsigned char>(s[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // a continuation byte: look further back
    std::size_t need = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

// One-shot flag coroutines can wait on, with a timeout.
class Flag {
 public:
  void set() {
    set_ = true;
    for (auto* timer : waiters_) timer->cancel();
  }
  bool is_set() const { return set_; }
  // True once set (at once when it already is), false after `timeout`.
  asio::awaitable<bool> wait(Millis timeout) {
    if (set_) co_return true;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    timer.expires_after(timeout);
    waiters_.push_back(&timer);
    co_await timer.async_wait(kAsTuple);
    std::erase(waiters_, &timer);
    co_return set_;
  }

 private:
  bool set_ = false;
  std::vector<asio::steady_timer*> waiters_;
};

struct Definition {
  std::string cmd;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::string dir;
  std::vector<std::string> needs;
  std::optional<int> http_port;
};

// A definition from JSON (a PUT body or an entry of services.json); nullopt
// and `why` when it is not acceptable.
std::optional<Definition> parse_definition(const json::value& v, std::string& why) {
  if (!v.is_object()) {
    why = "the body must be a JSON object";
    return std::nullopt;
  }
  const json::object& o = v.as_object();
  Definition d;
  const json::value* cmd = o.if_contains("cmd");
  if (!cmd || !cmd->is_string() || cmd->as_string().empty()) {
    why = "cmd must be a non-empty string (the executable; arguments go in args)";
    return std::nullopt;
  }
  d.cmd = std::string(cmd->as_string());
  auto strings = [&why](const json::value* list, const char* key,
                        std::vector<std::string>& out) -> bool {
    if (!list || list->is_null()) return true;
    if (!list->is_array()) {
      why = std::string(key) + " must be an array of strings";
      return false;
    }
    for (const auto& item : list->as_array()) {
      if (!item.is_string()) {
        why = std::string(key) + " must be an array of strings";
        return false;
      }
      out.emplace_back(item.as_string());
    }
    return true;
  };
  if (!strings(o.if_contains("args"), "args", d.args)) return std::nullopt;
  if (!strings(o.if_contains("needs"), "needs", d.needs)) return std::nullopt;
  if (const json::value* env = o.if_contains("env"); env && !env->is_null()) {
    if (!env->is_object()) {
      why = "env must be an object of strings";
      return std::nullopt;
    }
    for (const auto& [key, value] : env->as_object()) {
      if (!value.is_string() || key.empty() || key.find('=') != json::string_view::npos) {
        why = "env must map names (without '=') to strings";
        return std::nullopt;
      }
      d.env[std::string(key)] = std::string(value.as_string());
    }
  }
  if (const json::value* dir = o.if_contains("dir"); dir && !dir->is_null()) {
    if (!dir->is_string() || (!dir->as_string().empty() && dir->as_string().front() != '/')) {
      why = "dir must be an absolute path";
      return std::nullopt;
    }
    d.dir = std::string(dir->as_string());
  }
  if (const json::value* port = o.if_contains("http_port"); port && !port->is_null()) {
    std::int64_t p = 0;
    if (port->is_int64()) {
      p = port->as_int64();
    } else if (port->is_uint64()) {
      p = port->as_uint64() > 65535 ? 0 : static_cast<std::int64_t>(port->as_uint64());
    }
    if (p < 1 || p > 65535) {
      why = "http_port must be a port number (1-65535) or null";
      return std::nullopt;
    }
    d.http_port = static_cast<int>(p);
  }
  std::set<std::string> seen;
  for (const auto& need : d.needs) {
    if (!seen.insert(need).second) {
      why = "needs lists '" + need + "' twice";
      return std::nullopt;
    }
  }
  return d;
}

json::object definition_json(const std::string& name, const Definition& d) {
  json::object o;
  o["name"] = name;
  o["cmd"] = d.cmd;
  json::array args;
  for (const auto& a : d.args) args.emplace_back(a);
  o["args"] = std::move(args);
  json::object env;
  for (const auto& [k, v] : d.env) env[k] = v;
  o["env"] = std::move(env);
  if (!d.dir.empty()) o["dir"] = d.dir;
  json::array needs;
  for (const auto& n : d.needs) needs.emplace_back(n);
  o["needs"] = std::move(needs);
  if (d.http_port) {
    o["http_port"] = *d.http_port;
  } else {
    o["http_port"] = nullptr;
  }
  return o;
}

// What services.json holds per service.
struct Entry {
  Definition def;
  bool stopped = false;  // explicitly stopped: sticky
};

// A stream's queue of NDJSON lines (create/start/stop/restart/logs).
struct Watcher {
  explicit Watcher(const asio::any_io_executor& ex) : wake(ex) {}
  std::deque<std::string> lines;
  asio::steady_timer wake;
  bool closed = false;
  void push(const std::string& line) {
    lines.push_back(line);
    if (lines.size() > kWatcherLines) lines.pop_front();
    wake.cancel();
  }
  void close() {
    closed = true;
    wake.cancel();
  }
};

// One spawned process of a service.
struct Run {
  int pid = 0;
  std::weak_ptr<Machine> machine;
  Clock::time_point started = Clock::now();
  int open_pumps = 0;
  Flag drained;   // both pipes reached their end
  Flag finished;  // the exit was handled and its `exit` event sent
  bool stop_requested = false;
};

struct Service {
  explicit Service(std::string n) : name(std::move(n)) {}
  ~Service() {
    if (log_fd >= 0) ::close(log_fd);
  }
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  std::string name;
  Definition def;
  bool held_stopped = false;  // explicitly stopped (sticky, persisted)
  std::string status = "stopped";
  std::optional<SysClock::time_point> started_at, next_restart_at;
  std::string error;
  int restart_count = 0;
  int failures = 0;  // consecutive crashes, for the backoff
  std::shared_ptr<Run> run;
  std::optional<asio::steady_timer> restart_timer;
  std::uint64_t restart_generation = 0;  // a newer schedule (or a cancel) voids older timers
  std::deque<std::string> ring;
  std::size_t ring_bytes = 0;
  std::vector<std::weak_ptr<Watcher>> watchers;
  int log_fd = -1;
  std::uint64_t log_size = 0;
  bool removed = false;
};

struct SpriteState {
  SpriteState(const asio::any_io_executor& ex, std::string n, fs::path d)
      : name(std::move(n)), dir(std::move(d)), lock(ex) {}
  std::string name;
  fs::path dir;
  std::map<std::string, std::shared_ptr<Service>> services;
  AsyncMutex lock;  // one change (start, stop, put, delete, boot) at a time
  std::weak_ptr<Machine> machine;
  bool dropped = false;  // the sprite was deleted
};

// Releases the sprite's lock when it goes out of scope.
class Unlock {
 public:
  explicit Unlock(std::shared_ptr<SpriteState> sp) : sp_(std::move(sp)) {}
  ~Unlock() { sp_->lock.unlock(); }
  Unlock(const Unlock&) = delete;
  Unlock& operator=(const Unlock&) = delete;

 private:
  std::shared_ptr<SpriteState> sp_;
};

// Did the request carry a duration (Go syntax; a bare number is seconds)?
// nullopt with `bad` set when it is malformed or negative.
std::optional<Millis> duration_param(const proto::Target& target, const char* key, Millis fallback,
                                     bool& bad) {
  auto text = target.param(key);
  if (!text || text->empty()) return fallback;
  std::optional<std::chrono::nanoseconds> d = proto::parse_go_duration(*text);
  if (!d) {
    long seconds = 0;
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), seconds);
    if (ec == std::errc() && end == text->data() + text->size()) d = std::chrono::seconds(seconds);
  }
  if (!d || d->count() < 0) {
    bad = true;
    return std::nullopt;
  }
  return std::chrono::duration_cast<Millis>(*d);
}

HttpResponse bad_duration(const char* key) {
  return api_error(400, "invalid_duration",
                   std::string(key) + " must be a duration like 5s, 500ms or 0");
}

HttpResponse not_found(const std::string& svc, const std::string& sprite) {
  return api_error(404, "service_not_found", "no service '" + svc + "' on '" + sprite + "'");
}

HttpResponse sandbox_error(const std::string& why) {
  return api_error(503, "sprite_unavailable", "cannot run the sprite: " + why);
}

// Go's executor accessor if Fleet has one (then services start at a boot
// even before the first services request); see services.md.
template <class F>
std::optional<asio::any_io_executor> executor_of(F& fleet) {
  if constexpr (requires { fleet.executor(); }) {
    return asio::any_io_executor(fleet.executor());
  } else {
    return std::nullopt;
  }
}

}  // namespace

// ---- the supervisor ---------------------------------------------------------

class ServicesApi::Core : public std::enable_shared_from_this<Core> {
 public:
  Core(Fleet& fleet, Store& store) : fleet_(fleet), store_(store) {
    executor_ = executor_of(fleet);
  }

  asio::awaitable<void> serve(HttpExchange& exchange, const proto::Target& target,
                              const std::string& name);
  void started(const std::string& name, const std::shared_ptr<Machine>& machine);
  void status_changed(const std::string& name);
  ServicesApi::UrlPort url_port(const std::string& name, const std::shared_ptr<Machine>& machine);

 private:
  std::shared_ptr<SpriteState> sprite(const std::string& name);
  void load(SpriteState& sp);
  std::map<std::string, Entry> entries(const SpriteState& sp) const;
  bool persist(const SpriteState& sp, const std::map<std::string, Entry>& all, std::string& why);
  void drop(const std::string& name);
  void learn_executor(const asio::any_io_executor& ex);
  std::vector<std::shared_ptr<Service>> boot_order(const SpriteState& sp) const;
  std::string check_graph(const SpriteState& sp, const std::string& name,
                          const Definition& def) const;
  json::object service_json(const SpriteState& sp, const Service& svc) const;

  void emit(Service& svc, const std::string& line);
  std::shared_ptr<Watcher> watch(Service& svc);
  void output(SpriteState& sp, Service& svc, bool is_stderr, std::string_view data);
  void write_log(SpriteState& sp, Service& svc, std::string_view data);
  void remove_logs(const SpriteState& sp, const std::string& svc);

  void cancel_restart(Service& svc);
  void schedule_restart(const std::shared_ptr<SpriteState>& sp, const std::shared_ptr<Service>& svc,
                        const std::string& why, Clock::duration ran);
  void process_exited(const std::shared_ptr<SpriteState>& sp, const std::shared_ptr<Service>& svc,
                      const std::shared_ptr<Run>& run, int code);

  // Coroutines (started with co_spawn take everything as parameters).
  asio::awaitable<void> boot(std::shared_ptr<SpriteState> sp, std::shared_ptr<Machine> machine);
  asio::awaitable<void> restart_later(std::shared_ptr<SpriteState> sp, std::shared_ptr<Service> svc,
                                      std::uint64_t generation);
  asio::awaitable<void> pump(std::shared_ptr<SpriteState> sp, std::shared_ptr<Service> svc,
                             std::shared_ptr<Run> run,
                             std::shared_ptr<asio::posix::stream_descriptor> pipe, bool is_stderr);
  asio::awaitable<void> finish_run(std::shared_ptr<SpriteState> sp, std::shared_ptr<Service> svc,
                                   std::shared_ptr<Run> run, int code);
  asio::awaitable<void> start_process(std::shared_ptr<SpriteState> sp, std::shared_ptr<Service> svc,
                                      std::shared_ptr<Machine> machine);
  asio::awaitable<void> start_with_needs(std::shared_ptr<SpriteState> sp,
                                         std::shared_ptr<Service> svc,
                                         std::shared_ptr<Machine> machine);
  asio::awaitable<void> start_for_url(std::shared_ptr<SpriteState> sp, std::shared_ptr<Service> svc,
                                      std::shared_ptr<Machine> machine);
  asio::awaitable<void> stop_process(std::shared_ptr<Service> svc, Millis timeout);
  asio::awaitable<void> stream(HttpExchange& exchange, std::shared_ptr<Watcher> watcher,
                               Clock::time_point deadline, std::string service);
  asio::awaitable<std::shared_ptr<Machine>> wake(HttpExchange& exchange, const std::string& name);

  // The endpoints.
  asio::awaitable<void> put(HttpExchange& exchange, const proto::Target& target,
                            std::shared_ptr<SpriteState> sp, std::string svc_name);
  asio::awaitable<void> remove(HttpExchange& exchange, std::shared_ptr<SpriteState> sp,
                               std::shared_ptr<Service> svc);
  asio::awaitable<void> start(HttpExchange& exchange, const proto::Target& target,
                              std::shared_ptr<SpriteState> sp, std::shared_ptr<Service> svc,
                              bool restart);
  asio::awaitable<void> stop(HttpExchange& exchange, const proto::Target& target,
                             std::shared_ptr<SpriteState> sp, std::shared_ptr<Service> svc);
  asio::awaitable<void> logs(HttpExchange& exchange, const proto::Target& target,
                             std::shared_ptr<SpriteState> sp, std::shared_ptr<Service> svc);
  asio::awaitable<void> signal(HttpExchange& exchange, std::shared_ptr<SpriteState> sp);

  Fleet& fleet_;
  Store& store_;
  std::optional<asio::any_io_executor> executor_;
  std::map<std::string, std::shared_ptr<SpriteState>> sprites_;
  std::map<std::string, std::weak_ptr<Machine>> pending_boots_;  // started before any executor
};

// ---- state, persistence -------------------------------------------------------

std::shared_ptr<SpriteState> ServicesApi::Core::sprite(const std::string& name) {
  if (auto it = sprites_.find(name); it != sprites_.end()) return it->second;
  if (!store_.get(name) || !executor_) return nullptr;
  auto sp = std::make_shared<SpriteState>(*executor_, name, store_.dir(name));
  load(*sp);
  sprites_[name] = sp;
  return sp;
}

void ServicesApi::Core::load(SpriteState& sp) {
  std::ifstream in(sp.dir / kServicesFile, std::ios::binary);
  if (!in) return;  // no services yet
  std::stringstream text;
  text << in.rdbuf();
  json::error_code ec;
  json::value v = json::parse(text.str(), ec);
  const json::value* list = !ec && v.is_object() ? v.as_object().if_contains("services") : nullptr;
  if (!list || !list->is_array()) {
    std::fprintf(stderr, "spritescript serve: %s: not a services file; ignored\n",
                 (sp.dir / kServicesFile).c_str());
    return;
  }
  for (const auto& item : list->as_array()) {
    std::string why;
    const json::value* name = item.is_object() ? item.as_object().if_contains("name") : nullptr;
    auto def = parse_definition(item, why);
    if (!name || !name->is_string() || !def ||
        !check_service_name(std::string(name->as_string())).empty()) {
      std::fprintf(stderr, "spritescript serve: %s: a service entry is not valid (%s); ignored\n",
                   (sp.dir / kServicesFile).c_str(), why.c_str());
      continue;
    }
    auto svc = std::make_shared<Service>(std::string(name->as_string()));
    svc->def = std::move(*def);
    const json::value* stopped = item.as_object().if_contains("stopped");
    svc->held_stopped = stopped && stopped->is_bool() && stopped->as_bool();
    sp.services[svc->name] = svc;
  }
}

std::map<std::string, Entry> ServicesApi::Core::entries(const SpriteState& sp) const {
  std::map<std::string, Entry> all;
  for (const auto& [name, svc] : sp.services) all[name] = Entry{svc->def, svc->held_stopped};
  return all;
}

bool ServicesApi::Core::persist(const SpriteState& sp, const std::map<std::string, Entry>& all,
                                std::string& why) {
  if (sp.dropped || !store_.get(sp.name)) {
    why = "the sprite was deleted";
    return false;
  }
  json::array list;
  for (const auto& [name, entry] : all) {
    json::object o = definition_json(name, entry.def);
    o["stopped"] = entry.stopped;
    list.emplace_back(std::move(o));
  }
  json::object file;
  file["version"] = 1;
  file["services"] = std::move(list);
  try {
    write_file_atomically(sp.dir / kServicesFile, json::serialize(file) + "\n", 0644);
  } catch (const std::exception& e) {
    why = e.what();
    return false;
  }
  return true;
}

void ServicesApi::Core::drop(const std::string& name) {
  auto it = sprites_.find(name);
  if (it == sprites_.end()) return;
  auto sp = it->second;
  sprites_.erase(it);
  sp->dropped = true;
  for (auto& [n, svc] : sp->services) {
    svc->removed = true;
    cancel_restart(*svc);
    if (svc->log_fd >= 0) ::close(svc->log_fd);
    svc->log_fd = -1;
    for (auto& w : svc->watchers) {
      if (auto watcher = w.lock()) watcher->close();
    }
  }
}

void ServicesApi::Core::status_changed(const std::string& name) {
  if (!store_.get(name)) drop(name);  // deleted: never touch its directory again
}

void ServicesApi::Core::learn_executor(const asio::any_io_executor& ex) {
  if (executor_) return;
  executor_ = ex;
  auto pending = std::move(pending_boots_);
  pending_boots_.clear();
  for (const auto& [name, weak] : pending) {
    if (auto machine = weak.lock(); machine && machine->up()) started(name, machine);
  }
}

std::vector<std::shared_ptr<Service>> ServicesApi::Core::boot_order(const SpriteState& sp) const {
  std::vector<std::shared_ptr<Service>> order;
  std::set<std::string> done, visiting;
  std::function<void(const std::shared_ptr<Service>&)> visit =
      [&](const std::shared_ptr<Service>& svc) {
        if (done.count(svc->name) || !visiting.insert(svc->name).second) return;
        for (const auto& need : svc->def.needs) {
          if (auto it = sp.services.find(need); it != sp.services.end()) visit(it->second);
        }
        visiting.erase(svc->name);
        done.insert(svc->name);
        order.push_back(svc);
      };
  for (const auto& [name, svc] : sp.services) visit(svc);
  return order;
}

// "" when `name` with `def` fits the others: every need exists, no cycle.
std::string ServicesApi::Core::check_graph(const SpriteState& sp, const std::string& name,
                                           const Definition& def) const {
  std::map<std::string, std::vector<std::string>> graph;
  for (const auto& [n, svc] : sp.services) graph[n] = svc->def.needs;
  graph[name] = def.needs;
  for (const auto& need : def.needs) {
    if (!graph.count(need)) return "unknown service '" + need + "' in needs";
  }
  // Depth-first from the new definition: a way back to it is a cycle.
  std::vector<std::string> path{name};
  std::set<std::string> seen;
  std::function<std::string(const std::string&)> walk = [&](const std::string& at) -> std::string {
    for (const auto& need : graph[at]) {
      if (need == name) {
        std::string cycle = "needs form a cycle: ";
        for (const auto& p : path) cycle.append(p).append(" -> ");
        return cycle.append(name);
      }
      if (!seen.insert(need).second) continue;
      path.push_back(need);
      std::string found = walk(need);
      if (!found.empty()) return found;
      path.pop_back();
    }
    return "";
  };
  return walk(name);
}

json::object ServicesApi::Core::service_json(const SpriteState& sp, const Service& svc) const {
  json::object o = definition_json(svc.name, svc.def);
  json::object state;
  state["name"] = svc.name;
  const bool cold = fleet_.status(sp.name) == "cold";
  const bool running = svc.run && !cold;
  std::string status = cold && !svc.run ? "stopped" : svc.status;
  state["status"] = status;
  if (running) state["pid"] = svc.run->pid;
  if (running && svc.started_at) state["started_at"] = proto::format_rfc3339(*svc.started_at);
  if (status == "failed" && !svc.error.empty()) state["error"] = svc.error;
  state["restart_count"] = svc.restart_count;
  if (status == "failed" && svc.next_restart_at) {
    state["next_restart_at"] = proto::format_rfc3339(*svc.next_restart_at);
  }
  o["state"] = std::move(state);
  return o;
}

// ---- events and logs ----------------------------------------------------------

void ServicesApi::Core::emit(Service& svc, const std::string& line) {
  svc.ring.push_back(line);
  svc.ring_bytes += line.size();
  while (svc.ring.size() > kRingEvents || svc.ring_bytes > kRingBytes) {
    svc.ring_bytes -= svc.ring.front().size();
    svc.ring.pop_front();
  }
  std::erase_if(svc.watchers, [&line](const std::weak_ptr<Watcher>& w) {
    auto watcher = w.lock();
    if (!watcher) return true;
    watcher->push(line);
    return false;
  });
}

std::shared_ptr<Watcher> ServicesApi::Core::watch(Service& svc) {
  auto watcher = std::make_shared<Watcher>(*executor_);
  std::erase_if(svc.watchers, [](const std::weak_ptr<Watcher>& w) { return w.expired(); });
  svc.watchers.push_back(watcher);
  return watcher;
}

void ServicesApi::Core::output(SpriteState& sp, Service& svc, bool is_stderr,
                               std::string_view data) {
  write_log(sp, svc, data);
  const char* type = is_stderr ? "stderr" : "stdout";
  // One event per line (a partial line is an event of its own).
  while (!data.empty()) {
    std::size_t end = data.find('\n');
    end = end == std::string_view::npos ? data.size() : end + 1;
    emit(svc, event_line(type, data.substr(0, end)));
    data.remove_prefix(end);
  }
}

void ServicesApi::Core::write_log(SpriteState& sp, Service& svc, std::string_view data) {
  if (sp.dropped || svc.removed || !store_.get(sp.name)) return;
  const fs::path dir = sprite_dir::service_logs(sp.dir);
  const fs::path path = dir / (svc.name + ".log");
  if (svc.log_fd >= 0 && svc.log_size + data.size() > kLogLimit) {
    ::close(svc.log_fd);
    svc.log_fd = -1;
    std::error_code ec;
    fs::rename(path, dir / (svc.name + ".log.1"), ec);
  }
  if (svc.log_fd < 0) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    svc.log_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (svc.log_fd < 0) return;  // best effort: the events still flow
    struct stat st {};
    svc.log_size = ::fstat(svc.log_fd, &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
    if (svc.log_size + data.size() > kLogLimit && svc.log_size > 0) {  // full from an earlier run
      ::close(svc.log_fd);
      fs::rename(path, dir / (svc.name + ".log.1"), ec);
      svc.log_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
      if (svc.log_fd < 0) return;
      svc.log_size = 0;
    }
  }
  while (!data.empty()) {
    ssize_t n = ::write(svc.log_fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    svc.log_size += static_cast<std::uint64_t>(n);
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void ServicesApi::Core::remove_logs(const SpriteState& sp, const std::string& svc) {
  if (sp.dropped || !store_.get(sp.name)) return;
  const fs::path dir = sprite_dir::service_logs(sp.dir);
  std::error_code ec;
  fs::remove(dir / (svc + ".log"), ec);
  fs::remove(dir / (svc + ".log.1"), ec);
}

// ---- the supervisor's rules ---------------------------------------------------

void ServicesApi::Core::cancel_restart(Service& svc) {
  ++svc.restart_generation;
  if (svc.restart_timer) svc.restart_timer->cancel();
  svc.next_restart_at.reset();
}

void ServicesApi::Core::schedule_restart(const std::shared_ptr<SpriteState>& sp,
                                         const std::shared_ptr<Service>& svc,
                                         const std::string& why, Clock::duration ran) {
  if (ran >= kStableRun) svc->failures = 0;
  ++svc->failures;
  Millis delay = kBackoffFirst;
  for (int i = 1; i < svc->failures && delay < kBackoffCap; ++i) delay *= 2;
  delay = std::min(delay, kBackoffCap);
  svc->status = "failed";
  svc->error = why;
  svc->next_restart_at = SysClock::now() + delay;
  const std::uint64_t generation = ++svc->restart_generation;
  if (!svc->restart_timer) svc->restart_timer.emplace(*executor_);
  svc->restart_timer->expires_after(delay);
  std::weak_ptr<Core> weak_self = weak_from_this();
  std::weak_ptr<SpriteState> weak_sp = sp;
  std::weak_ptr<Service> weak_svc = svc;
  svc->restart_timer->async_wait(
      [weak_self, weak_sp, weak_svc, generation](boost::system::error_code ec) {
        auto self = weak_self.lock();
        auto sp = weak_sp.lock();
        auto svc = weak_svc.lock();
        if (ec || !self || !sp || !svc) return;
        asio::co_spawn(*self->executor_, self->restart_later(sp, svc, generation), asio::detached);
      });
}

// Machine::on_exit: the process ended (or the sandbox went down, 137).
void ServicesApi::Core::process_exited(const std::shared_ptr<SpriteState>& sp,
                                       const std::shared_ptr<Service>& svc,
                                       const std::shared_ptr<Run>& run, int code) {
  if (svc->run == run) svc->run.reset();
  auto machine = run->machine.lock();
  const bool sandbox_down = !machine || !machine->up();
  if (sp->dropped || svc->removed || sandbox_down || run->stop_requested || svc->held_stopped) {
    // Not a crash. A sandbox that went down takes every service with it;
    // they start again with the next sandbox (on_started).
    if (sandbox_down) cancel_restart(*svc);
    if (!svc->run) svc->status = "stopped";
  } else {
    schedule_restart(sp, svc, describe_exit(code), Clock::now() - run->started);
  }
  asio::co_spawn(*executor_, finish_run(sp, svc, run, code), asio::detached);
}

asio::awaitable<void> ServicesApi::Core::finish_run(std::shared_ptr<SpriteState> sp,
                                                    std::shared_ptr<Service> svc,
                                                    std::shared_ptr<Run> run, int code) {
  auto self = shared_from_this();
  co_await run->drained.wait(kDrainWait);  // its last output before its exit
  if (!sp->dropped && !svc->removed) emit(*svc, event_line("exit", std::nullopt, code));
  run->finished.set();
}

asio::awaitable<void> ServicesApi::Core::pump(std::shared_ptr<SpriteState> sp,
                                              std::shared_ptr<Service> svc,
                                              std::shared_ptr<Run> run,
                                              std::shared_ptr<asio::posix::stream_descriptor> pipe,
                                              bool is_stderr) {
  auto self = shared_from_this();
  std::string buffer(kReadSize, '\0');
  std::string pending;  // an incomplete UTF-8 sequence from the last read
  for (;;) {
    auto [ec, n] = co_await pipe->async_read_some(asio::buffer(buffer), kAsTuple);
    if (ec || n == 0) break;
    if (sp->dropped || svc->removed) continue;  // drained, so the process never blocks on it
    std::string_view data(buffer.data(), n);
    std::string joined;
    if (!pending.empty()) {
      joined = pending;
      joined.append(data);
      data = joined;
    }
    std::size_t whole = utf8_complete(data);
    output(*sp, *svc, is_stderr, data.substr(0, whole));
    pending = std::string(data.substr(whole));
  }
  if (!pending.empty() && !sp->dropped && !svc->removed) output(*sp, *svc, is_stderr, pending);
  if (--run->open_pumps == 0) run->drained.set();
}

// Spawns the service's process (the sprite's lock is held).
asio::awaitable<void> ServicesApi::Core::start_process(std::shared_ptr<SpriteState> sp,
                                                       std::shared_ptr<Service> svc,
                                                       std::shared_ptr<Machine> machine) {
  auto self = shared_from_this();
  if (svc->run || svc->removed || sp->dropped || !machine->up()) co_return;
  cancel_restart(*svc);
  svc->status = "starting";
  svc->error.clear();
  SpawnSpec spec;
  spec.argv.push_back(svc->def.cmd);
  spec.argv.insert(spec.argv.end(), svc->def.args.begin(), svc->def.args.end());
  spec.path = svc->def.cmd;
  for (const auto& [k, v] : svc->def.env) {
    spec.env.push_back(k);  // added to the base environment (the agent fills in the rest)
    spec.env.back().append("=").append(v);
  }
  spec.dir = svc->def.dir;
  std::optional<Spawned> spawned;
  std::string failure;
  try {
    spawned = co_await machine->spawn(spec);
  } catch (const std::exception& e) {
    failure = e.what();  // (no co_await in a handler)
  }
  if (spawned && (sp->dropped || svc->removed || !machine->up())) {
    machine->signal(spawned->pid, SIGKILL);
    machine->on_exit(spawned->pid, [](int) {});
    for (int fd : spawned->fds) ::close(fd);
    co_return;
  }
  if (!spawned) {
    if (sp->dropped || svc->removed) co_return;
    emit(*svc, event_line("error", "cannot start " + svc->def.cmd + ": " + failure));
    if (machine->up()) {
      schedule_restart(sp, svc, "cannot start: " + failure, Clock::duration::zero());
    } else {
      svc->status = "stopped";
    }
    co_return;
  }
  if (!spawned->fds.empty()) ::close(spawned->fds[0]);  // stdin: the service reads EOF
  auto run = std::make_shared<Run>();
  run->pid = spawned->pid;
  run->machine = machine;
  svc->run = run;
  svc->status = "running";
  svc->started_at = SysClock::now();
  emit(*svc, event_line("started"));
  write_log(*sp, *svc, "");  // the log file exists from the start (log_files names it)
  for (std::size_t i = 1; i < spawned->fds.size() && i < 3; ++i) {
    auto pipe = std::make_shared<asio::posix::stream_descriptor>(*executor_, spawned->fds[i]);
    ++run->open_pumps;
    asio::co_spawn(*executor_, pump(sp, svc, run, pipe, i == 2), asio::detached);
  }
  for (std::size_t i = 3; i < spawned->fds.size(); ++i) ::close(spawned->fds[i]);
  if (run->open_pumps == 0) run->drained.set();
  std::weak_ptr<Core> weak_self = weak_from_this();
  std::weak_ptr<SpriteState> weak_sp = sp;
  std::weak_ptr<Service> weak_svc = svc;
  machine->on_exit(run->pid, [weak_self, weak_sp, weak_svc, run](int code) {
    auto self = weak_self.lock();
    auto sp = weak_sp.lock();
    auto svc = weak_svc.lock();
    if (!self || !sp || !svc) return;
    self->process_exited(sp, svc, run, code);
  });
}

// Starts `svc` after what it needs that is not running (explicitly stopped
// services stay stopped). The sprite's lock is held.
asio::awaitable<void> ServicesApi::Core::start_with_needs(std::shared_ptr<SpriteState> sp,
                                                          std::shared_ptr<Service> svc,
                                                          std::shared_ptr<Machine> machine) {
  auto self = shared_from_this();
  std::set<std::string> wanted;
  std::vector<std::string> todo;
  todo.push_back(svc->name);
  while (!todo.empty()) {
    std::string name = std::move(todo.back());
    todo.pop_back();
    if (!wanted.insert(name).second) continue;
    if (auto it = sp->services.find(name); it != sp->services.end()) {
      todo.insert(todo.end(), it->second->def.needs.begin(), it->second->def.needs.end());
    }
  }
  for (const auto& s : boot_order(*sp)) {
    if (!wanted.count(s->name) || s->run) continue;
    if (s != svc && s->held_stopped) continue;
    co_await start_process(sp, s, machine);
  }
}

// TERM, then KILL after `timeout`; emits stopping, exit, stopped. The
// sprite's lock is held.
asio::awaitable<void> ServicesApi::Core::stop_process(std::shared_ptr<Service> svc,
                                                      Millis timeout) {
  auto self = shared_from_this();
  cancel_restart(*svc);
  auto run = svc->run;
  if (!run) {
    svc->status = "stopped";
    emit(*svc, event_line("stopping", "the service is not running"));
    emit(*svc, event_line("stopped", "stopped"));
    co_return;
  }
  run->stop_requested = true;
  svc->status = "stopping";
  emit(*svc,
       event_line("stopping", "sending SIGTERM to process group " + std::to_string(run->pid)));
  auto machine = run->machine.lock();
  if (machine && machine->up()) machine->signal(run->pid, SIGTERM);
  bool done = co_await run->finished.wait(timeout);
  if (!done) {
    emit(*svc, event_line("stopping", "timeout after " + proto::format_go_duration(timeout) +
                                          ", sending SIGKILL"));
    machine = run->machine.lock();
    if (machine && machine->up()) machine->signal(run->pid, SIGKILL);
    done = co_await run->finished.wait(kKillWait);
  }
  if (!done) {
    emit(*svc, event_line("error", "the process may not have ended"));
  }
  if (!svc->run) svc->status = "stopped";
  emit(*svc, event_line("stopped", "stopped"));
}

// After a crash's backoff: start it again if it is still wanted.
asio::awaitable<void> ServicesApi::Core::restart_later(std::shared_ptr<SpriteState> sp,
                                                       std::shared_ptr<Service> svc,
                                                       std::uint64_t generation) {
  auto self = shared_from_this();
  auto still_wanted = [&sp, &svc, generation]() {
    return !sp->dropped && !svc->removed && !svc->held_stopped && !svc->run &&
           svc->restart_generation == generation;
  };
  for (;;) {
    if (!still_wanted()) co_return;
    std::string status = fleet_.status(sp->name);
    if (status == "cold") {  // it starts with the next sandbox
      cancel_restart(*svc);
      svc->status = "stopped";
      co_return;
    }
    if (status == "running") break;
    // Warm: its processes are paused; the restart waits until it runs.
    asio::steady_timer wait(*executor_);
    wait.expires_after(kWarmRetry);
    co_await wait.async_wait(kAsTuple);
  }
  co_await sp->lock.lock();
  Unlock unlock{sp};
  auto machine = sp->machine.lock();
  if (!still_wanted() || !machine || !machine->up()) co_return;
  ++svc->restart_count;
  co_await start_process(sp, svc, machine);
}

// The sandbox started from cold: every service not explicitly stopped, in
// needs order.
asio::awaitable<void> ServicesApi::Core::boot(std::shared_ptr<SpriteState> sp,
                                              std::shared_ptr<Machine> machine) {
  auto self = shared_from_this();
  co_await sp->lock.lock();
  Unlock unlock{sp};
  if (sp->dropped || sp->machine.lock() != machine) co_return;  // a newer sandbox boots its own
  for (const auto& svc : boot_order(*sp)) {
    if (svc->held_stopped || svc->run || !machine->up()) continue;
    co_await start_process(sp, svc, machine);
  }
}

void ServicesApi::Core::started(const std::string& name, const std::shared_ptr<Machine>& machine) {
  if (!executor_) {  // (only without Fleet::executor()): booted at the first services request
    pending_boots_[name] = machine;
    return;
  }
  auto sp = sprite(name);
  if (!sp) return;
  sp->machine = machine;
  for (auto& [n, svc] : sp->services) {
    svc->failures = 0;
    if (!svc->run) {
      cancel_restart(*svc);
      svc->status = "stopped";
    }
  }
  asio::co_spawn(*executor_, boot(sp, machine), asio::detached);
}

// ---- the endpoints ------------------------------------------------------------

asio::awaitable<std::shared_ptr<Machine>> ServicesApi::Core::wake(HttpExchange& exchange,
                                                                  const std::string& name) {
  auto [machine, failure] = co_await fleet_.try_wake(name);
  if (!machine) {
    HttpResponse response = sandbox_error(failure);
    co_await exchange.respond(std::move(response));
  }
  co_return machine;
}

asio::awaitable<void> ServicesApi::Core::stream(HttpExchange& exchange,
                                                std::shared_ptr<Watcher> watcher,
                                                Clock::time_point deadline, std::string service) {
  bool open = true;
  for (;;) {
    while (open && !watcher->lines.empty()) {
      std::string line = std::move(watcher->lines.front());
      watcher->lines.pop_front();
      open = co_await exchange.write_chunk(line);
    }
    if (!open || watcher->closed || Clock::now() >= deadline) break;
    watcher->wake.expires_at(deadline);
    co_await watcher->wake.async_wait(kAsTuple);
  }
  if (!open) co_return;
  std::string complete = complete_line(service);
  if (co_await exchange.write_chunk(complete)) co_await exchange.finish_stream();
}

asio::awaitable<void> ServicesApi::Core::serve(HttpExchange& exchange, const proto::Target& target,
                                               const std::string& name) {
  auto self = shared_from_this();
  learn_executor(co_await asio::this_coro::executor);
  auto sp = sprite(name);
  const auto& seg = target.segments;
  const std::string& method = exchange.request().method;
  const std::string svc_name = seg.size() >= 5 ? seg[4] : std::string();
  std::shared_ptr<Service> svc;
  if (sp) {
    auto it = sp->services.find(svc_name);
    if (it != sp->services.end()) svc = it->second;
  }
  const bool known_action =
      seg.size() == 6 &&
      ((method == "POST" && (seg[5] == "start" || seg[5] == "stop" || seg[5] == "restart")) ||
       (method == "GET" && seg[5] == "logs"));
  // Plain answers first (JSON built outside the awaits: GCC 12).
  std::optional<HttpResponse> answer;
  if (!sp) {
    answer = api_error(404, "not_found", "no sprite '" + name + "'");
  } else if (seg.size() == 4) {
    if (method != "GET") {
      answer = api_error(405, "method_not_allowed", method + " is not allowed on services");
    } else {
      json::array list;
      for (const auto& [n, s] : sp->services) list.emplace_back(service_json(*sp, *s));
      answer = HttpResponse(200, json::serialize(list));
    }
  } else if (seg.size() == 5 && seg[4] == "signal") {
    if (method != "POST") {
      answer = api_error(405, "method_not_allowed",
                         R"(signal takes a POST with {"name": ..., "signal": ...})");
    }
  } else if (seg.size() == 5 && method == "PUT") {
  } else if (seg.size() == 5 && method != "GET" && method != "DELETE") {
    answer = api_error(405, "method_not_allowed", method + " is not allowed on a service");
  } else if (seg.size() > 6 || (seg.size() == 6 && !known_action)) {
    answer = api_error(404, "not_found", "no such services endpoint");
  } else if (!svc) {
    answer = not_found(svc_name, name);
  } else if (seg.size() == 5 && method == "GET") {
    answer = HttpResponse(200, json::serialize(service_json(*sp, *svc)));
  }
  if (answer) {
    co_await exchange.respond(std::move(*answer));
    co_return;
  }
  if (seg.size() == 5 && seg[4] == "signal") {
    co_await signal(exchange, sp);
  } else if (seg.size() == 5 && method == "PUT") {
    co_await put(exchange, target, sp, svc_name);
  } else if (seg.size() == 5) {
    co_await remove(exchange, sp, svc);
  } else if (seg[5] == "start" || seg[5] == "restart") {
    co_await start(exchange, target, sp, svc, seg[5] == "restart");
  } else if (seg[5] == "stop") {
    co_await stop(exchange, target, sp, svc);
  } else {
    co_await logs(exchange, target, sp, svc);
  }
}

asio::awaitable<void> ServicesApi::Core::put(HttpExchange& exchange, const proto::Target& target,
                                             std::shared_ptr<SpriteState> sp,
                                             std::string svc_name) {
  auto self = shared_from_this();
  std::optional<HttpResponse> refusal;
  std::optional<Definition> def;
  if (std::string why = check_service_name(svc_name); !why.empty()) {
    refusal = api_error(400, "invalid_service_name", why);
  } else {
    json::error_code ec;
    json::value body = json::parse(exchange.request().body, ec);
    std::string why2;
    if (ec) {
      refusal = api_error(400, "invalid_json", "the body is not valid JSON: " + ec.message());
    } else if (def = parse_definition(body, why2); !def) {
      refusal = api_error(400, "invalid_service", why2);
    }
  }
  bool bad = false;
  auto duration = duration_param(target, "duration", kDefaultDuration, bad);
  if (!refusal && bad) refusal = bad_duration("duration");
  if (refusal) {
    co_await exchange.respond(std::move(*refusal));
    co_return;
  }
  auto hold = fleet_.hold(sp->name);
  co_await sp->lock.lock();
  std::optional<Unlock> unlock;
  unlock.emplace(sp);
  if (std::string why = check_graph(*sp, svc_name, *def); !why.empty()) {
    refusal =
        api_error(400, why.starts_with("unknown") ? "unknown_dependency" : "dependency_cycle", why);
  } else if (def->http_port) {
    for (const auto& [n, other] : sp->services) {
      if (n != svc_name && other->def.http_port) {
        refusal = api_error(409, "http_port_conflict",
                            "service '" + n + "' already has an http_port (" +
                                std::to_string(*other->def.http_port) + "); only one may");
      }
    }
  }
  std::string why;
  if (!refusal) {
    auto all = entries(*sp);
    all[svc_name] = Entry{*def, false};
    if (!persist(*sp, all, why)) {
      refusal = api_error(500, "persist_failed", "cannot save the service: " + why);
    }
  }
  if (refusal) {
    co_await exchange.respond(std::move(*refusal));
    co_return;
  }
  auto& slot = sp->services[svc_name];
  if (!slot) slot = std::make_shared<Service>(svc_name);
  auto svc = slot;
  const bool replace = static_cast<bool>(svc->run);
  svc->def = std::move(*def);
  svc->held_stopped = false;
  svc->failures = 0;
  svc->restart_count = 0;
  auto watcher = watch(*svc);
  auto machine = co_await wake(exchange, sp->name);  // (answers 503 itself)
  if (!machine) co_return;
  if (!co_await exchange.start_stream(200, "application/x-ndjson")) co_return;
  if (replace) co_await stop_process(svc, kDefaultStopTimeout);
  co_await start_with_needs(sp, svc, machine);
  unlock.reset();
  const Clock::time_point deadline = Clock::now() + *duration;
  std::string stream_name = svc_name;
  co_await stream(exchange, watcher, deadline, stream_name);
}

asio::awaitable<void> ServicesApi::Core::remove(HttpExchange& exchange,
                                                std::shared_ptr<SpriteState> sp,
                                                std::shared_ptr<Service> svc) {
  auto self = shared_from_this();
  auto hold = fleet_.hold(sp->name);
  co_await sp->lock.lock();
  Unlock unlock{sp};
  if (svc->removed) {
    HttpResponse gone = not_found(svc->name, sp->name);
    co_await exchange.respond(std::move(gone));
    co_return;
  }
  std::string needed_by;
  for (const auto& [n, other] : sp->services) {
    if (n != svc->name && std::count(other->def.needs.begin(), other->def.needs.end(), svc->name)) {
      needed_by += (needed_by.empty() ? "" : ", ") + n;
    }
  }
  std::optional<HttpResponse> refusal;
  std::string why;
  auto all = entries(*sp);
  all.erase(svc->name);
  if (!needed_by.empty()) {
    refusal = api_error(409, "service_needed",
                        "'" + svc->name + "' is needed by " + needed_by + "; delete those first");
  } else if (!persist(*sp, all, why)) {
    refusal = api_error(500, "persist_failed", "cannot save the services: " + why);
  }
  if (refusal) {
    co_await exchange.respond(std::move(*refusal));
    co_return;
  }
  svc->held_stopped = true;  // no restart while it stops
  if (svc->run) {
    try {
      co_await fleet_.wake(sp->name);  // a warm sprite thaws, so TERM is acted on
    } catch (const std::exception&) {
      // It is going down anyway: the stop below finds the process gone.
    }
    co_await stop_process(svc, kDefaultStopTimeout);
  }
  svc->removed = true;
  cancel_restart(*svc);
  sp->services.erase(svc->name);
  for (auto& w : svc->watchers) {
    if (auto watcher = w.lock()) watcher->close();
  }
  if (svc->log_fd >= 0) ::close(svc->log_fd);
  svc->log_fd = -1;
  remove_logs(*sp, svc->name);
  HttpResponse done(204, "");
  co_await exchange.respond(std::move(done));
}

asio::awaitable<void> ServicesApi::Core::start(HttpExchange& exchange, const proto::Target& target,
                                               std::shared_ptr<SpriteState> sp,
                                               std::shared_ptr<Service> svc, bool restart) {
  auto self = shared_from_this();
  bool bad = false;
  auto duration = duration_param(target, "duration", kDefaultDuration, bad);
  if (bad) {
    HttpResponse refusal = bad_duration("duration");
    co_await exchange.respond(std::move(refusal));
    co_return;
  }
  auto hold = fleet_.hold(sp->name);
  auto machine = co_await wake(exchange, sp->name);
  if (!machine) co_return;
  co_await sp->lock.lock();
  std::optional<Unlock> unlock;
  unlock.emplace(sp);
  if (svc->removed) {
    HttpResponse gone = not_found(svc->name, sp->name);
    co_await exchange.respond(std::move(gone));
    co_return;
  }
  if (svc->held_stopped) {
    auto all = entries(*sp);
    all[svc->name].stopped = false;
    std::string why;
    if (!persist(*sp, all, why)) {
      HttpResponse failed = api_error(500, "persist_failed", "cannot save the service: " + why);
      co_await exchange.respond(std::move(failed));
      co_return;
    }
    svc->held_stopped = false;
  }
  auto watcher = watch(*svc);
  if (!co_await exchange.start_stream(200, "application/x-ndjson")) co_return;
  if (restart && svc->run) co_await stop_process(svc, kDefaultStopTimeout);
  if (!svc->run) {
    svc->failures = 0;
    co_await start_with_needs(sp, svc, machine);
  }
  unlock.reset();
  const Clock::time_point deadline = Clock::now() + *duration;
  std::string stream_name = svc->name;
  co_await stream(exchange, watcher, deadline, stream_name);
}

asio::awaitable<void> ServicesApi::Core::stop(HttpExchange& exchange, const proto::Target& target,
                                              std::shared_ptr<SpriteState> sp,
                                              std::shared_ptr<Service> svc) {
  auto self = shared_from_this();
  bool bad = false;
  auto timeout = duration_param(target, "timeout", kDefaultStopTimeout, bad);
  if (bad) {
    HttpResponse refusal = bad_duration("timeout");
    co_await exchange.respond(std::move(refusal));
    co_return;
  }
  auto hold = fleet_.hold(sp->name);
  co_await sp->lock.lock();
  std::optional<Unlock> unlock;
  unlock.emplace(sp);
  std::optional<HttpResponse> refusal;
  if (svc->removed) {
    refusal = not_found(svc->name, sp->name);
  } else if (svc->held_stopped && !svc->run) {
    refusal = api_error(409, "service_not_running", "service '" + svc->name + "' is not running");
  } else {
    auto all = entries(*sp);
    all[svc->name].stopped = true;
    std::string why;
    if (!persist(*sp, all, why)) {
      refusal = api_error(500, "persist_failed", "cannot save the service: " + why);
    }
  }
  if (refusal) {
    co_await exchange.respond(std::move(*refusal));
    co_return;
  }
  svc->held_stopped = true;
  cancel_restart(*svc);
  auto watcher = watch(*svc);
  if (svc->run) {
    try {
      co_await fleet_.wake(sp->name);  // a warm sprite thaws, so TERM is acted on
    } catch (const std::exception&) {
      // It is going down anyway: the stop below finds the process gone.
    }
  }
  if (!co_await exchange.start_stream(200, "application/x-ndjson")) co_return;
  co_await stop_process(svc, *timeout);
  unlock.reset();
  const Clock::time_point deadline = Clock::now();
  std::string stream_name = svc->name;
  co_await stream(exchange, watcher, deadline, stream_name);
}

asio::awaitable<void> ServicesApi::Core::logs(HttpExchange& exchange, const proto::Target& target,
                                              std::shared_ptr<SpriteState> sp,
                                              std::shared_ptr<Service> svc) {
  auto self = shared_from_this();
  bool bad = false;
  auto duration = duration_param(target, "duration", Millis(0), bad);
  if (bad) {
    HttpResponse refusal = bad_duration("duration");
    co_await exchange.respond(std::move(refusal));
    co_return;
  }
  std::size_t lines = kRingEvents;
  if (auto text = target.param("lines"); text && !text->empty()) {
    auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), lines);
    if (ec != std::errc() || end != text->data() + text->size()) {
      HttpResponse refusal = api_error(400, "invalid_lines", "lines must be a non-negative number");
      co_await exchange.respond(std::move(refusal));
      co_return;
    }
  }
  std::optional<Fleet::Hold> hold;
  if (duration->count() > 0) hold.emplace(fleet_.hold(sp->name));
  auto watcher = watch(*svc);
  const std::size_t skip = svc->ring.size() > lines ? svc->ring.size() - lines : 0;
  for (std::size_t i = skip; i < svc->ring.size(); ++i) watcher->lines.push_back(svc->ring[i]);
  if (!co_await exchange.start_stream(200, "application/x-ndjson")) co_return;
  const Clock::time_point deadline = Clock::now() + *duration;
  std::string stream_name = svc->name;
  co_await stream(exchange, watcher, deadline, stream_name);
}

asio::awaitable<void> ServicesApi::Core::signal(HttpExchange& exchange,
                                                std::shared_ptr<SpriteState> sp) {
  auto self = shared_from_this();
  json::error_code ec;
  json::value body = json::parse(exchange.request().body, ec);
  std::optional<HttpResponse> refusal;
  std::string svc_name, signal_text;
  std::optional<int> signo;
  if (ec || !body.is_object()) {
    refusal = api_error(400, "invalid_json", R"(the body must be {"name": ..., "signal": ...})");
  } else {
    const json::object& o = body.as_object();
    const json::value* n = o.if_contains("name");
    const json::value* s = o.if_contains("signal");
    if (!n || !n->is_string() || n->as_string().empty()) {
      refusal = api_error(400, "invalid_request", "name (the service) must be a string");
    } else if (!s || !(s->is_string() || s->is_int64())) {
      refusal = api_error(400, "invalid_signal", "signal must be a name like TERM or a number");
    } else {
      svc_name = std::string(n->as_string());
      signal_text = s->is_string() ? std::string(s->as_string()) : std::to_string(s->as_int64());
      signo = proto::parse_signal(signal_text);
      if (!signo)
        refusal = api_error(400, "invalid_signal", "unknown signal '" + signal_text + "'");
    }
  }
  if (!refusal && !sp->services.count(svc_name)) refusal = not_found(svc_name, sp->name);
  if (!refusal && !sp->services[svc_name]->run) {
    refusal = api_error(409, "service_not_running", "service '" + svc_name + "' is not running");
  }
  if (refusal) {
    co_await exchange.respond(std::move(*refusal));
    co_return;
  }
  auto svc = sp->services[svc_name];
  auto hold = fleet_.hold(sp->name);
  if (!co_await wake(exchange, sp->name)) co_return;  // a frozen process cannot act on it
  auto run = svc->run;
  auto machine = run ? run->machine.lock() : nullptr;
  if (!run || !machine || !machine->up()) {
    HttpResponse gone =
        api_error(409, "service_not_running", "service '" + svc_name + "' is not running");
    co_await exchange.respond(std::move(gone));
    co_return;
  }
  // TERM or KILL this way is a crash: the supervisor restarts it.
  machine->signal(run->pid, *signo);
  HttpResponse done(204, "");
  co_await exchange.respond(std::move(done));
}

// On demand, for the sprite URL (spec §11).
asio::awaitable<void> ServicesApi::Core::start_for_url(std::shared_ptr<SpriteState> sp,
                                                       std::shared_ptr<Service> svc,
                                                       std::shared_ptr<Machine> machine) {
  auto self = shared_from_this();
  co_await sp->lock.lock();
  Unlock unlock{sp};
  if (sp->dropped || svc->removed || svc->run || svc->held_stopped || !machine->up()) co_return;
  co_await start_with_needs(sp, svc, machine);
}

ServicesApi::UrlPort ServicesApi::Core::url_port(const std::string& name,
                                                 const std::shared_ptr<Machine>& machine) {
  auto sp = sprite(name);
  if (!sp) return {};
  for (auto& [n, svc] : sp->services) {
    if (!svc->def.http_port) continue;
    const bool idle = !svc->run && svc->status != "starting" && !svc->held_stopped;
    if (idle && machine && machine->up() && executor_) {
      asio::co_spawn(*executor_, start_for_url(sp, svc, machine), asio::detached);
    }
    return {*svc->def.http_port, true};
  }
  return {};
}

// ---- ServicesApi ----------------------------------------------------------------

ServicesApi::ServicesApi(Fleet& fleet, Store& store)
    : fleet_(fleet), core_(std::make_shared<Core>(fleet, store)) {
  std::weak_ptr<Core> weak = core_;
  fleet_.on_started = [weak](const std::string& name, const std::shared_ptr<Machine>& machine) {
    if (auto core = weak.lock()) core->started(name, machine);
  };
  observer_ = fleet_.observe([weak](const std::string& name) {
    if (auto core = weak.lock()) core->status_changed(name);
  });
}

ServicesApi::~ServicesApi() {
  fleet_.on_started = nullptr;
  fleet_.unobserve(observer_);
}

ServicesApi::UrlPort ServicesApi::url_port(const std::string& name,
                                           const std::shared_ptr<Machine>& machine) {
  return core_->url_port(name, machine);
}

asio::awaitable<void> ServicesApi::serve(HttpExchange& exchange, const proto::Target& target,
                                         const std::string& name) {
  auto core = core_;
  co_await core->serve(exchange, target, name);
}

}  // namespace spritescript::engine
