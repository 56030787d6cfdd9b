// Checkpoints (spec §7): create (NDJSON progress), list, get, delete and restore. Everything under
// /v1/sprites/{name}/checkpoint and .../checkpoints.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <string>

#include "engine/http_server.hpp"
#include "proto/http_target.hpp"

namespace spritescript::engine {

class Fleet;
class Store;

class CheckpointApi {
 public:
  CheckpointApi(Fleet& fleet, Store& store);
  ~CheckpointApi();

  // `name` is an existing sprite; target.segments[3] is this API's segment.
  asio::awaitable<void> serve(HttpExchange& exchange, const proto::Target& target,
                              const std::string& name);

 private:
  Fleet& fleet_;
  Store& store_;
};

}  // namespace spritescript::engine
