// The filesystem API (spec §10): read, write, list, delete, rename, copy, chmod, chown and watch,
// resolved inside the sprite's root only. Everything under /v1/sprites/{name}/fs.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <string>

#include "engine/http_server.hpp"
#include "proto/http_target.hpp"

namespace spritescript::engine {

class Fleet;
class Store;

class FsApi {
 public:
  FsApi(Fleet& fleet, Store& store);
  ~FsApi();

  // `name` is an existing sprite; target.segments[3] is this API's segment.
  asio::awaitable<void> serve(HttpExchange& exchange, const proto::Target& target,
                              const std::string& name);

 private:
  Fleet& fleet_;
  Store& store_;
};

}  // namespace spritescript::engine
