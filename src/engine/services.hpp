// Services (spec §11): definitions, a supervisor that restarts them, their logs. Everything under
// /v1/sprites/{name}/services (docs/services.md).
//
// Definitions persist in <sprite dir>/services.json. Services run whenever the sprite's sandbox is
// up: every service that was not explicitly stopped starts (in `needs` order) each time the
// sandbox starts from cold (Fleet::on_started); a sprite with services hibernates like any other.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <memory>
#include <string>

#include "engine/http_server.hpp"
#include "proto/http_target.hpp"

namespace spritescript::engine {

class Fleet;
class Machine;
class Store;

class ServicesApi {
 public:
  // Sets fleet.on_started and observes the fleet (a deleted sprite's services are dropped).
  ServicesApi(Fleet& fleet, Store& store);
  ~ServicesApi();
  ServicesApi(const ServicesApi&) = delete;
  ServicesApi& operator=(const ServicesApi&) = delete;

  // `name` is an existing sprite; target.segments[3] is this API's segment.
  asio::awaitable<void> serve(HttpExchange& exchange, const proto::Target& target,
                              const std::string& name);

  // The port the sprite's URL routes to: the http_port of the service that
  // has one (started now if it is not running and was not explicitly
  // stopped), else 8080 (spec §11).
  struct UrlPort {
    int port = 8080;
    bool service = false;  // a service has it (and may be starting)
  };
  UrlPort url_port(const std::string& name, const std::shared_ptr<Machine>& machine);

  class Core;  // the supervisor and the handlers (services.cpp)

 private:
  Fleet& fleet_;
  std::shared_ptr<Core> core_;  // callbacks hold it weakly: they outlive nothing
  std::uint64_t observer_ = 0;
};

}  // namespace spritescript::engine
