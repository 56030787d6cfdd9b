#include "engine/services.hpp"

#include "engine/api.hpp"
#include "engine/fleet.hpp"
#include "engine/store.hpp"

namespace spritescript::engine {

ServicesApi::ServicesApi(Fleet& fleet, Store& store) : fleet_(fleet), store_(store) {}

ServicesApi::~ServicesApi() = default;

asio::awaitable<void> ServicesApi::serve(HttpExchange& exchange, const proto::Target& target,
                                         const std::string& name) {
  (void)target;
  (void)name;
  co_await exchange.respond(api_error(404, "not_found", "not implemented yet"));
}

}  // namespace spritescript::engine
