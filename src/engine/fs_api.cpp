#include "engine/fs_api.hpp"

#include "engine/api.hpp"
#include "engine/fleet.hpp"
#include "engine/store.hpp"

namespace spritescript::engine {

FsApi::FsApi(Fleet& fleet, Store& store) : fleet_(fleet), store_(store) {}

FsApi::~FsApi() = default;

asio::awaitable<void> FsApi::serve(HttpExchange& exchange, const proto::Target& target,
                                   const std::string& name) {
  (void)target;
  (void)name;
  co_await exchange.respond(api_error(404, "not_found", "not implemented yet"));
}

}  // namespace spritescript::engine
