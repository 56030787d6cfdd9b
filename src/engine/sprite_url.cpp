#include "engine/sprite_url.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <cctype>
#include <chrono>

#include "engine/api.hpp"
#include "engine/fleet.hpp"
#include "engine/proxy_api.hpp"
#include "engine/services.hpp"
#include "engine/store.hpp"
#include "engine/tcp_relay.hpp"
#include "proto/values.hpp"

using boost::asio::ip::tcp;

namespace spritescript::engine {
namespace {

using proto::iequals;

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
// How long a service with the http_port gets to start listening.
constexpr auto kServiceStartWait = std::chrono::seconds(10);

// NAME out of NAME.localhost[:PORT].
std::string sprite_name(std::string_view host) {
  std::string name(host.substr(0, host.find('.')));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return name;
}

// A descriptor as an Asio socket of its own address family.
tcp::socket adopt(const asio::any_io_executor& ex, int fd) {
  int domain = AF_INET;
  socklen_t length = sizeof domain;
  ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length);
  tcp::socket socket(ex);
  boost::system::error_code ec;
  socket.assign(domain == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
  if (ec) ::close(fd);
  return socket;
}

// The request's head as the sprite's server gets it: our token never goes
// in, and a plain request is the connection's last (Connection: close), so
// that every request on a connection has been checked here.
std::string upstream_head(const HttpRequest& request, const std::string& token) {
  std::string head = request.method + " " + request.target + " HTTP/1.1\r\n";
  for (const auto& [name, value] : request.fields) {
    if (iequals(name, "authorization") && same_secret(value, "Bearer " + token)) continue;
    if (!request.websocket && (iequals(name, "connection") || iequals(name, "keep-alive")))
      continue;
    head += name + ": " + value + "\r\n";
  }
  head += "X-Forwarded-Host: " + request.host + "\r\nX-Forwarded-Proto: http\r\n";
  if (!request.websocket) head += "Connection: close\r\n";
  return head + "\r\n";
}

HttpResponse text_error(int status, const std::string& message) {
  HttpResponse response(status, "spritescript: " + message + "\n");
  response.content_type = "text/plain; charset=utf-8";
  return response;
}

}  // namespace

asio::awaitable<void> SpriteUrl::serve(HttpExchange& exchange) {
  const HttpRequest& request = exchange.request();
  const std::string name = sprite_name(request.host);
  const Sprite* sprite = store_.get(name);
  if (!sprite) {
    co_await exchange.respond(text_error(404, "no sprite named '" + name + "'"));
    co_return;
  }
  if (sprite->url_auth != "public" && !same_secret(request.authorization, "Bearer " + token_)) {
    co_await exchange.respond(text_error(
        401, "sprite " + name +
                 "'s URL wants the engine's token (Authorization: Bearer <token>), or set its "
                 "url_settings.auth to \"public\""));
    co_return;
  }
  auto hold = fleet_.hold(name);
  Fleet::Woken woken = co_await fleet_.try_wake(name);
  if (!woken.machine) {
    co_await exchange.respond(
        text_error(503, "cannot start sprite " + name + ": " + woken.failure));
    co_return;
  }
  auto target = services_.url_port(name, woken.machine);
  auto ex = co_await asio::this_coro::executor;
  const auto give_up = std::chrono::steady_clock::now() + kServiceStartWait;
  Dialed dialed;
  for (;;) {
    for (const char* ip : {"127.0.0.1", "::1"}) {
      dialed = co_await dial(woken.machine, ip, target.port);
      if (dialed.fd >= 0) break;
    }
    // A service that was just started may not listen yet.
    if (dialed.fd >= 0 || !target.service || std::chrono::steady_clock::now() > give_up) break;
    asio::steady_timer pause(ex, std::chrono::milliseconds(100));
    co_await pause.async_wait(kAsTuple);
  }
  if (dialed.fd < 0) {
    co_await exchange.respond(text_error(
        502, "nothing answers on port " + std::to_string(target.port) + " in sprite " + name +
                 " (" + dialed.error + "): its URL reaches a server listening there" +
                 (target.service ? "" : " (8080, or a service's http_port)")));
    co_return;
  }
  tcp::socket upstream = adopt(ex, dialed.fd);
  const std::string head = upstream_head(request, token_);
  HttpExchange::Connection client_connection = exchange.take_connection();
  if (client_connection.fd < 0) co_return;
  tcp::socket client = adopt(ex, client_connection.fd);
  std::string first = head + client_connection.pending;
  auto [ec, n] = co_await asio::async_write(upstream, asio::buffer(first), kAsTuple);
  if (ec) co_return;
  auto relay = std::make_shared<TcpRelay>(std::move(client), std::move(upstream));
  co_await relay->run();
}

}  // namespace spritescript::engine
