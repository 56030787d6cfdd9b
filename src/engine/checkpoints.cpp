#include "engine/checkpoints.hpp"

#include "engine/api.hpp"
#include "engine/fleet.hpp"
#include "engine/store.hpp"

namespace spritescript::engine {

CheckpointApi::CheckpointApi(Fleet& fleet, Store& store) : fleet_(fleet), store_(store) {}

CheckpointApi::~CheckpointApi() = default;

asio::awaitable<void> CheckpointApi::serve(HttpExchange& exchange, const proto::Target& target,
                                           const std::string& name) {
  (void)target;
  (void)name;
  co_await exchange.respond(api_error(404, "not_found", "not implemented yet"));
}

}  // namespace spritescript::engine
