// The exec endpoints of the local engine (spec §3-§5): WebSocket exec and
// attach (both URL forms), HTTP POST exec, session list, kill, and the HEAD
// version probe. Everything under /v1/sprites/{name}/exec.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <string>

#include "engine/http_server.hpp"
#include "proto/http_target.hpp"

namespace spritescript::engine {

class Fleet;

class ExecApi {
 public:
  explicit ExecApi(Fleet& fleet) : fleet_(fleet) {}

  // `name` is an existing sprite; target.segments[3] == "exec".
  asio::awaitable<void> serve(HttpExchange& exchange, const proto::Target& target,
                              const std::string& name);

 private:
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
};

}  // namespace spritescript::engine
