// The Sprites REST API of the local engine (shared/spec/sprites-api.md):
// routing, authentication, status codes and JSON shapes. Transport-free: it
// maps an HttpRequest to an HttpResponse, so it is tested without sockets
// too.
#pragma once

#include <cstdint>
#include <string>

#include "engine/http_server.hpp"
#include "engine/store.hpp"

namespace spritescript::engine {

class Api {
 public:
  Api(Store& store, std::string token, std::uint16_t port)
      : store_(store), token_(std::move(token)), port_(port) {}

  HttpResponse handle(const HttpRequest& request);

 private:
  Store& store_;
  std::string token_;
  std::uint16_t port_;
};

}  // namespace spritescript::engine
