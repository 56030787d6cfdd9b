// Services (spec §11): definitions, a supervisor that restarts them, their logs. Everything under
// /v1/sprites/{name}/services.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <string>

#include "engine/http_server.hpp"
#include "proto/http_target.hpp"

namespace spritescript::engine {

class Fleet;
class Store;

class ServicesApi {
 public:
  ServicesApi(Fleet& fleet, Store& store);
  ~ServicesApi();

  // `name` is an existing sprite; target.segments[3] is this API's segment.
  asio::awaitable<void> serve(HttpExchange& exchange, const proto::Target& target,
                              const std::string& name);

 private:
  Fleet& fleet_;
  Store& store_;
};

}  // namespace spritescript::engine
