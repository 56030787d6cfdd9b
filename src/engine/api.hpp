// The Sprites API of the local engine (shared/spec/sprites-api.md):
// routing, authentication, status codes and JSON shapes. handle() is the
// transport-free REST core (an HttpRequest to an HttpResponse, unit-tested
// without sockets); serve() is the whole API on an HTTP exchange, adding the
// endpoints that stream or need a running sandbox (exec, restart, check).
#pragma once

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "engine/checkpoints.hpp"
#include "engine/exec_api.hpp"
#include "engine/fs_api.hpp"
#include "engine/http_server.hpp"
#include "engine/policy_api.hpp"
#include "engine/ports.hpp"
#include "engine/proxy_api.hpp"
#include "engine/services.hpp"
#include "engine/sprite_url.hpp"
#include "engine/store.hpp"

namespace spritescript::engine {

class Fleet;

// Constant-time comparison: the token must not leak through timing.
bool same_secret(const std::string& a, const std::string& b);

// A JSON error response ({"error","message"}, spec §1.6).
HttpResponse api_error(int status, std::string code, std::string message);

// For an endpoint served only over a WebSocket (`what`, e.g. "the proxy
// (spec §9)"): 405 for another method than GET, 400 for a GET that is not
// an upgrade; nullopt when the request is a WebSocket upgrade.
std::optional<HttpResponse> websocket_refusal(const HttpRequest& request, const std::string& what);

class Api {
 public:
  // Without a fleet every sprite is cold and nothing can run (unit tests).
  Api(Store& store, std::string token, std::uint16_t port, Fleet* fleet = nullptr);

  HttpResponse handle(const HttpRequest& request);
  // What the egress path enforces (egress.hpp).
  NetworkPolicies& network_policies() { return network_policies_; }
  asio::awaitable<void> serve(HttpExchange& exchange);

 private:
  bool authorized(const HttpRequest& request) const;
  asio::awaitable<void> watch(HttpExchange& exchange, const std::string& prefix);
  std::string watch_line(const std::string& name) const;
  boost::json::object org_json() const;

  Store& store_;
  std::string token_;
  std::uint16_t port_;
  Fleet* fleet_;
  std::unique_ptr<ExecApi> exec_;
  std::unique_ptr<CheckpointApi> checkpoints_;
  std::unique_ptr<FsApi> fs_;
  std::unique_ptr<ServicesApi> services_;
  std::unique_ptr<PortMonitor> ports_;
  std::unique_ptr<ProxyApi> proxy_;
  std::unique_ptr<SpriteUrl> sprite_url_;
  NetworkPolicies network_policies_;
  PolicyApi policies_;
};

}  // namespace spritescript::engine
