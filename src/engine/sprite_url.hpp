// A sprite's URL (spec §2.1 `url`, §11): http://NAME.localhost:PORT/ on the
// engine's own listener reaches the HTTP server on port 8080 inside the
// sprite (or the port of the service with an http_port). The connection is
// relayed as it is, after its first request's header: WebSocket upgrades
// and streamed bodies work. url_settings.auth "sprite" (the default) wants
// the engine's token; "public" wants nothing. docs/networking.md.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <string>

#include "engine/http_server.hpp"

namespace spritescript::engine {

class Fleet;
class ServicesApi;
class Store;

class SpriteUrl {
 public:
  SpriteUrl(Fleet& fleet, Store& store, ServicesApi& services, std::string token)
      : fleet_(fleet), store_(store), services_(services), token_(std::move(token)) {}

  // `exchange.request().passthrough` is set.
  asio::awaitable<void> serve(HttpExchange& exchange);

 private:
  Fleet& fleet_;
  Store& store_;
  ServicesApi& services_;
  std::string token_;
};

}  // namespace spritescript::engine
