// Listening TCP ports inside sprites (spec §6 and §3.6.2). The engine polls
// the sprite's own /proc (through the Machine's root descriptor: its /proc
// is the sprite's pid namespace, and /proc/1/net/tcp{,6} is the agent's,
// that is the sprite's, network namespace) while anyone watches, one poller
// per sprite shared by every watcher: the ports/watch WebSocket and every
// connected exec WebSocket. A new listening socket's pid is found through
// the socket links in the sprite's /proc/<pid>/fd (best effort).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/http_server.hpp"
#include "proto/http_target.hpp"

namespace spritescript::engine {

class Fleet;

struct ListeningPort {
  int port = 0;
  std::string address;  // the bind IP: "0.0.0.0", "127.0.0.1", "::", "::1" (spec §16 item 10)
  int pid = 0;          // as the sprite sees it; 0 when unknown
  std::uint64_t inode = 0;
};

// The listening sockets in the text of /proc/net/tcp (ipv6 = false) or
// /proc/net/tcp6 (ipv6 = true). Lines that do not parse are skipped.
std::vector<ListeningPort> parse_proc_net_tcp(std::string_view text, bool ipv6);

// {"type":"port_opened"|"port_closed","port","address","pid"} (pid only
// when known) and {"type":"port_list","ports":[...]}.
std::string port_event_message(bool opened, const ListeningPort& port);
std::string port_list_message(const std::vector<ListeningPort>& ports);

// Sends port_opened/port_closed text messages to a WebSocket as they happen
// (and port_list first, when asked), in order, until destroyed.
class PortFeed {
 public:
  struct State;
  explicit PortFeed(std::shared_ptr<State> state) : state_(std::move(state)) {}
  ~PortFeed();
  PortFeed(const PortFeed&) = delete;
  PortFeed& operator=(const PortFeed&) = delete;

 private:
  std::shared_ptr<State> state_;
};

class PortMonitor {
 public:
  static constexpr std::chrono::milliseconds kDefaultInterval{300};

  explicit PortMonitor(Fleet& fleet, std::chrono::milliseconds interval = kDefaultInterval);
  ~PortMonitor();
  PortMonitor(const PortMonitor&) = delete;
  PortMonitor& operator=(const PortMonitor&) = delete;

  // Starts feeding `ws` the port events of sprite `name`. With `with_list`,
  // the first message is port_list, a fresh snapshot; events follow from
  // that snapshot on, none lost or repeated. `still_wanted` (optional) is
  // asked before each message; once false, the feed stops.
  std::unique_ptr<PortFeed> feed(const std::string& name, std::shared_ptr<WebSocket> ws,
                                 bool with_list, std::function<bool()> still_wanted = {});

  // GET /v1/sprites/{name}/ports/watch (spec §6); target.segments[3] ==
  // "ports". It neither wakes the sprite nor keeps it awake: a cold sprite
  // listens on nothing.
  asio::awaitable<void> serve(HttpExchange& exchange, const proto::Target& target,
                              const std::string& name);

  struct Watch;

 private:
  std::shared_ptr<Watch> watch(const std::string& name);

  Fleet& fleet_;
  std::chrono::milliseconds interval_;
  std::map<std::string, std::weak_ptr<Watch>> watches_;
};

}  // namespace spritescript::engine
