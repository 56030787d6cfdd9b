#include "engine/proxy_api.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include "engine/api.hpp"
#include "engine/fleet.hpp"

namespace json = boost::json;

namespace spritescript::engine {
namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
// How long a client may take to send its init message after the upgrade.
constexpr auto kInitTimeout = std::chrono::seconds(30);
// A connect inside the sprite is to its own loopback: it completes (or is
// refused) at once unless the listener's backlog is full.
constexpr auto kConnectTimeout = std::chrono::seconds(5);
// The most bytes read from the target at a time, and so the largest binary
// message the engine sends (and all it buffers per direction).
constexpr std::size_t kChunk = std::size_t{256} * 1024;
constexpr std::uint16_t kCloseNormal = 1000;
constexpr std::uint16_t kCloseError = 1011;

const char* const kInitShape = R"({"host":"localhost","port":N})";

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// "Connection refused" -> "connection refused", as Go prints dial errors.
std::string lower_first(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// The canonical form of `host` when it is an address of the sprite's own
// (loopback or unspecified); nullopt otherwise.
std::optional<std::string> own_address(const std::string& host) {
  char text[INET6_ADDRSTRLEN] = {};
  in_addr v4{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    const std::uint32_t a = ntohl(v4.s_addr);
    if ((a >> 24) != 127 && a != 0) return std::nullopt;
    ::inet_ntop(AF_INET, &v4, text, sizeof text);
    return std::string(text);
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    const bool mapped_loopback = IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
    if (!IN6_IS_ADDR_LOOPBACK(&v6) && !IN6_IS_ADDR_UNSPECIFIED(&v6) && !mapped_loopback) {
      return std::nullopt;
    }
    ::inet_ntop(AF_INET6, &v6, text, sizeof text);
    return std::string(text);
  }
  return std::nullopt;
}

// (JSON built outside coroutines: GCC 12 cannot keep an initializer list
// in a coroutine frame.)
std::string connected_message(const std::string& target) {
  json::object o;
  o["status"] = "connected";
  o["target"] = target;
  return json::serialize(o);
}

std::string error_message(const std::string& why) {
  json::object o;
  o["status"] = "error";
  o["error"] = why;
  return json::serialize(o);
}

// A failure after the upgrade: one clear message, then close (spec §9).
asio::awaitable<void> refuse(WebSocket& ws, std::string why) {
  const std::string message = error_message(why);
  if (co_await ws.write(false, message)) co_await ws.close(kCloseError);
}

// Closes a client that never sends its init message.
asio::awaitable<void> init_watchdog(std::shared_ptr<WebSocket> ws,
                                    std::shared_ptr<asio::steady_timer> timer,
                                    std::shared_ptr<bool> got_init) {
  auto [ec] = co_await timer->async_wait(kAsTuple);
  if (ec || *got_init) co_return;
  co_await refuse(*ws, "no init message within 30 s: send " + std::string(kInitShape));
}

}  // namespace

// One connection attempt inside the sprite; waits for a connect the agent
// left in progress, up to kConnectTimeout.
asio::awaitable<Dialed> dial(std::shared_ptr<Machine> machine, std::string ip, int port) {
  Dialed out;
  Connected connected;
  std::string failure;
  try {
    connected = co_await machine->connect(ip, port);
  } catch (const std::exception& e) {
    failure = e.what();  // (no co_await inside a handler)
  }
  if (!failure.empty()) {
    out.error = failure;
    co_return out;
  }
  if (connected.in_progress) {
    auto ex = co_await asio::this_coro::executor;
    auto socket = std::make_shared<asio::posix::stream_descriptor>(ex, connected.fd);
    asio::steady_timer timer(ex);
    timer.expires_after(kConnectTimeout);
    timer.async_wait([socket](boost::system::error_code ec) {
      if (!ec) socket->cancel(ec);
    });
    auto [ec] = co_await socket->async_wait(asio::posix::stream_descriptor::wait_write, kAsTuple);
    timer.cancel();
    int error = 0;
    socklen_t length = sizeof error;
    if (ec) {
      error = ETIMEDOUT;
    } else if (::getsockopt(socket->native_handle(), SOL_SOCKET, SO_ERROR, &error, &length) != 0) {
      error = errno;
    }
    connected.fd = socket->release();
    if (error != 0) {
      ::close(connected.fd);
      out.error = std::strerror(error);
      co_return out;
    }
  }
  out.fd = connected.fd;
  co_return out;
}

namespace {

// One tunnel once connected: the client's WebSocket and the target socket.
struct Tunnel {
  Tunnel(std::shared_ptr<WebSocket> w, asio::ip::tcp::socket s, const asio::any_io_executor& ex)
      : ws(std::move(w)), socket(std::move(s)), upstream_done(ex) {
    upstream_done.expires_at(asio::steady_timer::time_point::max());
  }
  std::shared_ptr<WebSocket> ws;
  asio::ip::tcp::socket socket;
  asio::steady_timer upstream_done;
  bool upstream_finished = false;
  bool target_failed = false;  // a write to the target failed (reset)
};

// Client -> target: each binary message is written whole before the next is
// read (the WebSocket's flow control is the back-pressure). Runs until the
// client's socket ends, which also ends the target connection.
asio::awaitable<void> client_to_target(std::shared_ptr<Tunnel> t) {
  bool writable = true;
  while (auto message = co_await t->ws->read()) {
    // Text during the relay means nothing (Go and JS ignore it too).
    if (!message->binary || message->data.empty() || !writable) continue;
    auto [ec, n] = co_await asio::async_write(t->socket, asio::buffer(message->data), kAsTuple);
    if (ec) {
      // The target is gone: the other direction ends and closes the socket
      // with an error; keep reading so its close handshake completes.
      writable = false;
      t->target_failed = true;
      boost::system::error_code ignored;
      t->socket.cancel(ignored);
    }
  }
  // The client closed (there is no half-close, spec §9): the target sees
  // end-of-file, and the read in the other direction ends.
  boost::system::error_code ignored;
  t->socket.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  t->socket.cancel(ignored);
  t->upstream_finished = true;
  t->upstream_done.cancel();
}

// Target -> client, then the end of the tunnel: close 1000 when the target
// closed, 1011 when it failed; waits for the other direction to finish.
asio::awaitable<void> relay(std::shared_ptr<Tunnel> t) {
  asio::co_spawn(co_await asio::this_coro::executor, client_to_target(t), asio::detached);
  std::unique_ptr<char[]> buffer(new char[kChunk]);
  std::uint16_t code = kCloseNormal;
  for (;;) {
    auto [ec, n] = co_await t->socket.async_read_some(asio::buffer(buffer.get(), kChunk), kAsTuple);
    if (ec) {
      if (ec != asio::error::eof) code = kCloseError;
      break;
    }
    const std::string_view chunk(buffer.get(), n);
    if (!co_await t->ws->write(true, chunk)) break;  // the client is gone
  }
  if (t->target_failed) code = kCloseError;
  co_await t->ws->close(code);  // nothing when the client already left
  if (!t->upstream_finished) co_await t->upstream_done.async_wait(kAsTuple);
  boost::system::error_code ignored;
  t->socket.close(ignored);
}

}  // namespace

std::string join_host_port(const std::string& host, int port) {
  if (host.find(':') != std::string::npos && host.front() != '[') {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

ProxyTarget parse_proxy_init(std::string_view text, const std::string& sprite_name) {
  ProxyTarget t;
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) {
    t.error = "the init message is not a JSON object: send " + std::string(kInitShape);
    return t;
  }
  const json::object& o = v.as_object();
  const json::value* port = o.if_contains("port");
  std::int64_t number = 0;
  bool valid = false;
  if (port && port->is_int64()) {
    number = port->as_int64();
    valid = true;
  } else if (port && port->is_uint64()) {
    valid = port->as_uint64() <= 65535;
    number = valid ? static_cast<std::int64_t>(port->as_uint64()) : 0;
  } else if (port && port->is_double()) {
    double d = port->as_double();
    valid = d >= 1 && d <= 65535 && d == static_cast<double>(static_cast<std::int64_t>(d));
    number = valid ? static_cast<std::int64_t>(d) : 0;
  }
  if (!valid || number < 1 || number > 65535) {
    t.error = "invalid port: \"port\" must be an integer from 1 to 65535";
    return t;
  }
  t.port = static_cast<int>(number);
  const json::value* host = o.if_contains("host");
  if (host && !host->is_null() && !host->is_string()) {
    t.error = "invalid host: \"host\" must be a string";
    return t;
  }
  t.host = host && host->is_string() ? std::string(host->as_string()) : std::string();
  if (t.host.empty()) t.host = "localhost";  // as Go defaults it
  std::string name = lower(t.host);
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  if (name == "localhost" || name == "ip6-localhost" || name == "localhost.localdomain" ||
      name == sprite_name) {
    t.addresses = {"127.0.0.1", "::1"};
  } else if (auto ip = own_address(name)) {
    t.addresses = {*ip};
  } else {
    t.error = "cannot reach '" + t.host +
              "': the proxy reaches the sprite's own addresses only (localhost, its name, "
              "127.0.0.0/8, ::1, 0.0.0.0, ::)";
  }
  return t;
}

asio::awaitable<void> ProxyApi::serve(HttpExchange& exchange, const proto::Target& target,
                                      const std::string& name) {
  const HttpRequest& request = exchange.request();
  if (target.segments.size() != 4) {
    co_await exchange.respond(api_error(404, "not_found", "no such proxy endpoint"));
    co_return;
  }
  if (auto refusal = websocket_refusal(request, "the proxy (spec §9)")) {
    co_await exchange.respond(std::move(*refusal));
    co_return;
  }
  auto hold = fleet_.hold(name);  // the sprite stays awake while the tunnel is up
  Headers headers;
  auto ws = co_await exchange.accept_websocket(headers);
  if (!ws) co_return;
  auto ex = co_await asio::this_coro::executor;

  auto got_init = std::make_shared<bool>(false);
  auto init_timer = std::make_shared<asio::steady_timer>(ex);
  init_timer->expires_after(kInitTimeout);
  asio::co_spawn(ex, init_watchdog(ws, init_timer, got_init), asio::detached);
  auto first = co_await ws->read();
  *got_init = true;
  init_timer->cancel();
  if (!first) co_return;

  ProxyTarget wanted;
  if (first->binary) {
    wanted.error = "the first message must be the text init message " + std::string(kInitShape);
  } else {
    wanted = parse_proxy_init(first->data, name);
  }
  if (!wanted.error.empty()) {
    co_await refuse(*ws, wanted.error);
    co_return;
  }

  auto [machine, failure] = co_await fleet_.try_wake(name);
  if (!machine) {
    co_await refuse(*ws, "cannot start the sprite: " + failure);
    co_return;
  }

  Dialed dialed;
  std::string why;
  bool ipv6 = false;
  for (const auto& ip : wanted.addresses) {
    dialed = co_await dial(machine, ip, wanted.port);
    if (dialed.fd >= 0) {
      ipv6 = ip.find(':') != std::string::npos;
      break;
    }
    if (why.empty()) {
      why =
          "dial tcp " + join_host_port(ip, wanted.port) + ": connect: " + lower_first(dialed.error);
    }
  }
  machine.reset();
  if (dialed.fd < 0) {
    co_await refuse(*ws, why);
    co_return;
  }
  asio::ip::tcp::socket socket(ex);
  boost::system::error_code ec;
  socket.assign(ipv6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), dialed.fd, ec);
  if (ec) {
    ::close(dialed.fd);
    co_await refuse(*ws, "cannot use the connection: " + ec.message());
    co_return;
  }
  socket.set_option(asio::ip::tcp::no_delay(true), ec);  // a tunnel adds no latency of its own

  const std::string reply = connected_message(join_host_port(wanted.host, wanted.port));
  if (!co_await ws->write(false, reply)) co_return;
  auto tunnel = std::make_shared<Tunnel>(ws, std::move(socket), ex);
  co_await relay(tunnel);
}

}  // namespace spritescript::engine
