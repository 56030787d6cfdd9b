// The filesystem API (spec §10): read, write, list, delete, rename, copy, chmod, chown and watch,
// resolved inside the sprite's root only. Everything under /v1/sprites/{name}/fs.
//
// Every path is resolved with openat2(root_fd, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), where
// root_fd is the sprite's own `/` (Machine::root_fd()), and changed with *at() calls on the
// resolved parent directory: `..`, absolute symlinks and /proc magic links stay inside the
// sprite. Blocking work runs on a small thread pool; file bodies stream both ways
// (docs/fs-api.md).
#pragma once

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <string>

#include "engine/http_server.hpp"
#include "proto/http_target.hpp"

namespace boost::asio {
class thread_pool;
}

namespace spritescript::engine {

class Fleet;
class Machine;
class Store;

class FsApi {
 public:
  FsApi(Fleet& fleet, Store& store);
  ~FsApi();
  FsApi(const FsApi&) = delete;
  FsApi& operator=(const FsApi&) = delete;

  // `name` is an existing sprite; target.segments[3] is this API's segment.
  asio::awaitable<void> serve(HttpExchange& exchange, const proto::Target& target,
                              const std::string& name);

 private:
  asio::awaitable<void> read(HttpExchange& exchange, const proto::Target& target,
                             std::shared_ptr<Machine> machine);
  asio::awaitable<void> write(HttpExchange& exchange, const proto::Target& target,
                              std::shared_ptr<Machine> machine);
  asio::awaitable<void> watch(HttpExchange& exchange, std::shared_ptr<Machine> machine);

  Fleet& fleet_;
  Store& store_;
  std::unique_ptr<asio::thread_pool> pool_;
};

}  // namespace spritescript::engine
