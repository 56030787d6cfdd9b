#include "engine/ports.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <set>
#include <utility>

#include "engine/api.hpp"
#include "engine/fleet.hpp"
#include "engine/sandbox.hpp"

namespace json = boost::json;

namespace spritescript::engine {
namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
// /proc/net/tcp of a sprite with very many sockets is long; a fake /proc a
// hostile sprite mounted could be endless.
constexpr std::size_t kMaxProcFile = std::size_t{32} * 1024 * 1024;
// Port events waiting for a client that does not read: past this, the feed
// stops (ports come and go far more slowly than any client reads).
constexpr std::size_t kMaxQueued = 10'000;
constexpr std::string_view kListen = "0A";  // TCP_LISTEN in /proc/net/tcp

using Key = std::pair<std::string, int>;  // address, port

int open_with(int dir, const char* path, std::uint64_t flags, std::uint64_t resolve) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.resolve = resolve;
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, dir, path, &how, sizeof how);
    if (fd < 0 && errno == EAGAIN && attempt < 100) continue;
    return static_cast<int>(fd);
  }
}

// A path of the sprite as it sees it: absolute symlinks start at its root,
// `..` stops there, /proc magic links are refused.
int open_in_root(int root, const char* path, std::uint64_t flags) {
  return open_with(root, path, flags, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS);
}

// Below `dir`, with no symlink at all (/proc/<pid>/fd has none).
int open_beneath(int dir, const char* path, std::uint64_t flags) {
  return open_with(dir, path, flags, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS);
}

std::string read_all(int fd) {
  std::string text;
  char buffer[16384];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buffer, static_cast<std::size_t>(n));
    if (text.size() > kMaxProcFile) break;
  }
  return text;
}

std::string read_in_root(int root, const char* path) {
  int fd = open_in_root(root, path, O_RDONLY);
  if (fd < 0) return {};
  std::string text = read_all(fd);
  ::close(fd);
  return text;
}

bool parse_hex(std::string_view text, std::uint32_t& out) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out, 16);
  return ec == std::errc() && end == text.data() + text.size();
}

// The next whitespace-separated field of `line` from `pos`.
std::string_view next_field(std::string_view line, std::size_t& pos) {
  while (pos < line.size() && (line[pos] == ' ' || line[pos] == '\t')) ++pos;
  std::size_t start = pos;
  while (pos < line.size() && line[pos] != ' ' && line[pos] != '\t') ++pos;
  return line.substr(start, pos - start);
}

// Which processes hold the sockets `wanted` (inode -> pid), found through
// the links in the sprite's /proc/<pid>/fd. Best effort: a process that
// exits meanwhile, or one we may not inspect, is skipped.
void find_pids(int root, const std::set<std::uint64_t>& wanted,
               std::map<std::uint64_t, int>& found) {
  int proc = open_in_root(root, "/proc", O_RDONLY | O_DIRECTORY);
  if (proc < 0) return;
  DIR* dir = ::fdopendir(proc);
  if (!dir) {
    ::close(proc);
    return;
  }
  std::size_t remaining = wanted.size();
  while (remaining > 0) {
    dirent* entry = ::readdir(dir);
    if (!entry) break;
    int pid = 0;
    std::string_view name(entry->d_name);
    auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
    if (ec != std::errc() || end != name.data() + name.size() || pid <= 0) continue;
    std::string fd_dir = std::string(name) + "/fd";
    int fds = open_beneath(::dirfd(dir), fd_dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fds < 0) continue;
    DIR* links = ::fdopendir(fds);
    if (!links) {
      ::close(fds);
      continue;
    }
    while (dirent* link = ::readdir(links)) {
      char target[64];
      ssize_t n = ::readlinkat(::dirfd(links), link->d_name, target, sizeof target - 1);
      if (n <= 9) continue;
      std::string_view text(target, static_cast<std::size_t>(n));
      if (text.substr(0, 8) != "socket:[" || text.back() != ']') continue;
      std::uint64_t inode = 0;
      text = text.substr(8, text.size() - 9);
      if (std::from_chars(text.data(), text.data() + text.size(), inode).ec != std::errc()) {
        continue;
      }
      if (wanted.count(inode) && !found.count(inode)) {
        found[inode] = pid;
        --remaining;
      }
    }
    ::closedir(links);
  }
  ::closedir(dir);
}

}  // namespace

std::vector<ListeningPort> parse_proc_net_tcp(std::string_view text, bool ipv6) {
  std::vector<ListeningPort> ports;
  std::size_t line_start = 0;
  bool header = true;
  while (line_start < text.size()) {
    std::size_t line_end = text.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = text.size();
    std::string_view line = text.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    if (header) {  // "  sl  local_address rem_address   st ..."
      header = false;
      continue;
    }
    std::size_t pos = 0;
    std::string_view fields[10];
    for (auto& field : fields) field = next_field(line, pos);
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
    if (fields[3] != kListen) continue;
    std::string_view local = fields[1];
    std::size_t colon = local.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view address_hex = local.substr(0, colon);
    std::uint32_t port = 0;
    if (!parse_hex(local.substr(colon + 1), port) || port == 0 || port > 65535) continue;
    std::uint64_t inode = 0;
    if (std::from_chars(fields[9].data(), fields[9].data() + fields[9].size(), inode).ec !=
        std::errc()) {
      continue;
    }
    char printed[INET6_ADDRSTRLEN] = {};
    // The kernel prints each 32-bit word of the address as a number in the
    // machine's byte order: read back into memory the same way.
    if (!ipv6) {
      in_addr a{};
      if (address_hex.size() != 8 || !parse_hex(address_hex, a.s_addr)) continue;
      ::inet_ntop(AF_INET, &a, printed, sizeof printed);
    } else {
      in6_addr a{};
      if (address_hex.size() != 32) continue;
      bool ok = true;
      for (std::size_t word = 0; word < 4 && ok; ++word) {
        std::uint32_t value = 0;
        ok = parse_hex(address_hex.substr(word * 8, 8), value);
        std::memcpy(&a.s6_addr[word * 4], &value, sizeof value);
      }
      if (!ok) continue;
      ::inet_ntop(AF_INET6, &a, printed, sizeof printed);
    }
    // The engine's own proxy in the sprite (egress.hpp) is not the sprite's.
    if (!ipv6 && port == sandbox::kProxyPort &&
        std::string_view(printed) == sandbox::kEgressAddress) {
      continue;
    }
    ListeningPort p;
    p.port = static_cast<int>(port);
    p.address = printed;
    p.inode = inode;
    ports.push_back(std::move(p));
  }
  return ports;
}

std::string port_event_message(bool opened, const ListeningPort& port) {
  json::object o;
  o["type"] = opened ? "port_opened" : "port_closed";
  o["port"] = port.port;
  o["address"] = port.address;
  if (port.pid > 0) o["pid"] = port.pid;
  return json::serialize(o);
}

std::string port_list_message(const std::vector<ListeningPort>& ports) {
  json::array list;
  for (const auto& p : ports) {
    json::object o;
    o["type"] = "port_opened";  // each element shaped like port_opened (spec §6)
    o["port"] = p.port;
    o["address"] = p.address;
    if (p.pid > 0) o["pid"] = p.pid;
    list.push_back(std::move(o));
  }
  json::object message;
  message["type"] = "port_list";
  message["ports"] = std::move(list);
  return json::serialize(message);
}

// One sprite's poller and the feeds listening to it.
struct PortMonitor::Watch {
  using Listener = std::function<void(bool opened, const ListeningPort&)>;

  Watch(Fleet& f, std::string n, std::chrono::milliseconds i)
      : fleet(&f), name(std::move(n)), interval(i), timer(f.executor()) {}

  // Scans the sprite now and tells every listener what changed.
  void refresh() {
    std::vector<ListeningPort> now;
    auto m = fleet->machine(name);
    if (m && m->up()) {
      if (machine.lock() != m) {  // a new sandbox: new pids, new sockets
        pids.clear();
        machine = m;
      }
      now = scan(m->root_fd());
    }
    std::map<Key, ListeningPort> next;
    for (auto& p : now) {
      Key key{p.address, p.port};
      next.emplace(std::move(key), std::move(p));
    }
    std::vector<ListeningPort> closed, opened;
    for (const auto& [key, p] : current) {
      auto it = next.find(key);
      if (it == next.end() || it->second.inode != p.inode) closed.push_back(p);
    }
    for (const auto& [key, p] : next) {
      auto it = current.find(key);
      if (it == current.end() || it->second.inode != p.inode) opened.push_back(p);
    }
    current = std::move(next);
    if (closed.empty() && opened.empty()) return;
    auto copy = listeners;  // a listener may not change the map, but be safe
    for (const auto& p : closed) {
      for (auto& [id, listener] : copy) listener(false, p);
    }
    for (const auto& p : opened) {
      for (auto& [id, listener] : copy) listener(true, p);
    }
  }

  std::vector<ListeningPort> scan(int root) {
    std::string tcp = read_in_root(root, "/proc/1/net/tcp");
    std::string tcp6 = read_in_root(root, "/proc/1/net/tcp6");
    std::vector<ListeningPort> ports = parse_proc_net_tcp(tcp, false);
    auto v6 = parse_proc_net_tcp(tcp6, true);
    ports.insert(ports.end(), std::make_move_iterator(v6.begin()),
                 std::make_move_iterator(v6.end()));
    std::set<std::uint64_t> unknown, live;
    for (const auto& p : ports) {
      live.insert(p.inode);
      if (!pids.count(p.inode)) unknown.insert(p.inode);
    }
    if (!unknown.empty()) {
      std::map<std::uint64_t, int> found;
      find_pids(root, unknown, found);
      for (auto inode : unknown) pids[inode] = found.count(inode) ? found[inode] : 0;
    }
    for (auto it = pids.begin(); it != pids.end();) {
      it = live.count(it->first) ? std::next(it) : pids.erase(it);
    }
    for (auto& p : ports) p.pid = pids[p.inode];
    return ports;
  }

  std::vector<ListeningPort> snapshot() const {
    std::vector<ListeningPort> out;
    out.reserve(current.size());
    for (const auto& [key, p] : current) out.push_back(p);
    return out;
  }

  Fleet* fleet;
  std::string name;
  std::chrono::milliseconds interval;
  asio::steady_timer timer;
  bool stopped = false;
  std::uint64_t next_id = 1;
  std::map<std::uint64_t, Listener> listeners;
  std::map<Key, ListeningPort> current;
  std::map<std::uint64_t, int> pids;  // socket inode -> pid (0: not found)
  std::weak_ptr<Machine> machine;
};

struct PortFeed::State {
  explicit State(const asio::any_io_executor& ex) : wake(ex) {
    wake.expires_at(asio::steady_timer::time_point::max());
  }
  std::shared_ptr<PortMonitor::Watch> watch;  // reset when the feed ends
  std::uint64_t listener = 0;
  std::shared_ptr<WebSocket> ws;
  std::function<bool()> still_wanted;
  std::deque<std::string> queue;
  asio::steady_timer wake;
  bool stopped = false;
  bool overflowed = false;  // the client did not read: the socket is closed
};

namespace {

// (Coroutines started with co_spawn take their state as parameters: lambda
// captures are not safe across GCC 12's coroutines.)
asio::awaitable<void> poll_ports(std::shared_ptr<PortMonitor::Watch> w) {
  while (!w->stopped) {
    w->timer.expires_after(w->interval);
    co_await w->timer.async_wait(kAsTuple);
    if (w->stopped || w->listeners.empty()) break;
    w->refresh();
  }
}

asio::awaitable<void> write_feed(std::shared_ptr<PortFeed::State> s) {
  while (!s->stopped) {
    if (s->queue.empty()) {
      co_await s->wake.async_wait(kAsTuple);
      continue;
    }
    std::string message = std::move(s->queue.front());
    s->queue.pop_front();
    if (s->still_wanted && !s->still_wanted()) break;
    if (!co_await s->ws->write(false, message)) break;
  }
  s->stopped = true;
  s->queue.clear();
  if (s->overflowed) co_await s->ws->close(1011);
}

}  // namespace

PortFeed::~PortFeed() {
  if (state_->watch) state_->watch->listeners.erase(state_->listener);
  state_->watch.reset();
  state_->stopped = true;
  state_->wake.cancel();
}

PortMonitor::PortMonitor(Fleet& fleet, std::chrono::milliseconds interval)
    : fleet_(fleet), interval_(interval) {}

PortMonitor::~PortMonitor() {
  for (auto& [name, weak] : watches_) {
    if (auto w = weak.lock()) {
      w->stopped = true;
      w->timer.cancel();
    }
  }
}

std::shared_ptr<PortMonitor::Watch> PortMonitor::watch(const std::string& name) {
  if (auto it = watches_.find(name); it != watches_.end()) {
    if (auto w = it->second.lock()) return w;
  }
  for (auto it = watches_.begin(); it != watches_.end();) {  // forget finished ones
    it = it->second.expired() ? watches_.erase(it) : std::next(it);
  }
  auto w = std::make_shared<Watch>(fleet_, name, interval_);
  w->refresh();  // the baseline: what listens already is no event
  watches_[name] = w;
  asio::co_spawn(fleet_.executor(), poll_ports(w), asio::detached);
  return w;
}

std::unique_ptr<PortFeed> PortMonitor::feed(const std::string& name, std::shared_ptr<WebSocket> ws,
                                            bool with_list, std::function<bool()> still_wanted) {
  auto w = watch(name);
  auto s = std::make_shared<PortFeed::State>(fleet_.executor());
  s->ws = std::move(ws);
  s->still_wanted = std::move(still_wanted);
  if (with_list) {
    w->refresh();  // a fresh snapshot (other feeds hear what changed first)
    s->queue.push_back(port_list_message(w->snapshot()));
  }
  s->watch = w;
  s->listener = w->next_id++;
  std::weak_ptr<PortFeed::State> weak = s;
  w->listeners[s->listener] = [weak](bool opened, const ListeningPort& p) {
    auto state = weak.lock();
    if (!state || state->stopped) return;
    if (state->queue.size() >= kMaxQueued) {
      state->stopped = true;
      state->overflowed = true;
    } else {
      state->queue.push_back(port_event_message(opened, p));
    }
    state->wake.cancel();
  };
  asio::co_spawn(fleet_.executor(), write_feed(s), asio::detached);
  return std::make_unique<PortFeed>(s);
}

asio::awaitable<void> PortMonitor::serve(HttpExchange& exchange, const proto::Target& target,
                                         const std::string& name) {
  const HttpRequest& request = exchange.request();
  if (target.segments.size() != 5 || target.segments[4] != "watch") {
    co_await exchange.respond(api_error(404, "not_found", "no such ports endpoint"));
    co_return;
  }
  if (auto refusal = websocket_refusal(request, "ports/watch (spec §6)")) {
    co_await exchange.respond(std::move(*refusal));
    co_return;
  }
  Headers headers;
  auto ws = co_await exchange.accept_websocket(headers);
  if (!ws) co_return;
  auto feed = this->feed(name, ws, true);
  // The client sends nothing (spec §6); a read stays pending until it
  // closes (it also answers pings), and anything it sends is ignored.
  while (co_await ws->read()) {
  }
}

}  // namespace spritescript::engine
