// The exec endpoints of the local engine (spec §3-§5): WebSocket exec and
// attach (both URL forms), HTTP POST exec, session list, kill, and the HEAD
// version probe. Everything under /v1/sprites/{name}/exec.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "engine/http_server.hpp"
#include "engine/machine.hpp"
#include "proto/http_target.hpp"

namespace spritescript::engine {

class Fleet;
class PortMonitor;
class Session;

// What an exec request asks to run (spec §3.2).
struct ExecRequest {
  SpawnSpec spec;
  bool stdin_open = false;
  std::chrono::milliseconds max_run_after_disconnect{0};
};

class ExecApi {
 public:
  explicit ExecApi(Fleet& fleet) : fleet_(fleet) {}
  // Where exec WebSockets get port_opened/port_closed from (spec §3.6.2);
  // none without it.
  void set_ports(PortMonitor* ports) { ports_ = ports; }

  // `name` is an existing sprite; target.segments[3] == "exec".
  asio::awaitable<void> serve(HttpExchange& exchange, const proto::Target& target,
                              const std::string& name);

 private:
  // The sprite's sandbox, woken; nullptr once it has answered 503 because
  // the sandbox cannot run.
  asio::awaitable<std::shared_ptr<Machine>> wake(HttpExchange& exchange, const std::string& name);
  // Wakes the sprite, spawns the command and registers its session; nullptr
  // once it has answered 503.
  asio::awaitable<std::shared_ptr<Session>> start_session(HttpExchange& exchange,
                                                          const std::string& name,
                                                          const ExecRequest& request);
  asio::awaitable<void> start_websocket(HttpExchange& exchange, const proto::Target& target,
                                        const std::string& name);
  asio::awaitable<void> attach_websocket(HttpExchange& exchange, const std::string& name,
                                         const std::string& id);
  asio::awaitable<void> http_exec(HttpExchange& exchange, const proto::Target& target,
                                  const std::string& name);
  asio::awaitable<void> kill(HttpExchange& exchange, const proto::Target& target,
                             const std::string& name, const std::string& id);
  HttpResponse list(const std::string& name) const;

  Fleet& fleet_;
  PortMonitor* ports_ = nullptr;
};

}  // namespace spritescript::engine
