// Checkpoints (spec §7): create (NDJSON progress), list, get, delete and
// restore. Everything under /v1/sprites/{name}/checkpoint and .../checkpoints.
//
// On disk, next to the sprite's layer (docs/engine.md, "Checkpoints"):
//
//   checkpoints/ID/          the tree: a copy of fs/layer, never changed again
//                            (read-only in the sprite at /.sprite/checkpoints)
//   checkpoint-meta/ID.json  id, time, comment, source, history
//   checkpoint-meta/ID.files what each file was copied from (reuse by link)
//   checkpoint-meta/counters.json
//   checkpoint-tmp/          trees being built, layers being replaced
//   fs/layer/.spritescript-layer.json   the layer's generation and the
//                            checkpoint it was restored from ("current")
//
// A checkpoint exists when both its metadata and its tree do: the metadata
// is written first, the tree renamed into place last, and whatever a killed
// engine left half-done is removed before the next operation. A restore
// builds the new layer aside and swaps it in with one
// renameat2(RENAME_EXCHANGE), so the sprite has either its old layer or the
// restored one, never a mix.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <string>

#include "engine/http_server.hpp"
#include "proto/http_target.hpp"

namespace spritescript::engine {

class Fleet;
class Store;

class CheckpointApi {
 public:
  // Cleans what a killed engine left half-done, for every sprite.
  CheckpointApi(Fleet& fleet, Store& store);
  ~CheckpointApi();
  CheckpointApi(const CheckpointApi&) = delete;
  CheckpointApi& operator=(const CheckpointApi&) = delete;

  // `name` is an existing sprite; target.segments[3] is "checkpoint" or
  // "checkpoints".
  asio::awaitable<void> serve(HttpExchange& exchange, const proto::Target& target,
                              const std::string& name);

 private:
  asio::awaitable<void> create(HttpExchange& exchange, const std::string& name);
  asio::awaitable<void> restore(HttpExchange& exchange, const std::string& name,
                                const std::string& id);
  asio::awaitable<void> remove(HttpExchange& exchange, const std::string& name,
                               const std::string& id);
  HttpResponse list(const proto::Target& target, const std::string& name) const;
  HttpResponse get(const std::string& name, const std::string& id) const;
  // Taken when an idle sprite is paused (running -> warm), kept only if it
  // stayed paused throughout; the newest --auto-checkpoints are kept.
  asio::awaitable<void> auto_checkpoint(std::string name);

  Fleet& fleet_;
  Store& store_;
  std::atomic<bool> stopping_{false};
  boost::asio::thread_pool pool_{2};
};

}  // namespace spritescript::engine
