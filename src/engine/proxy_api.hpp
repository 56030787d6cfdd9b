// The TCP proxy of the local engine (spec §9): GET /v1/sprites/{name}/proxy
// upgrades to a WebSocket; the client's text init {"host","port"} names a
// port inside the sprite; the engine has the sprite's agent connect to it
// inside the sandbox's network namespace (the agent hands the socket over),
// answers {"status":"connected","target":...}, and from then on relays
// binary messages to the socket and the socket's bytes back as binary
// messages. Failures answer {"status":"error","error":...} and close 1011.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/http_server.hpp"
#include "proto/http_target.hpp"

namespace spritescript::engine {

class Fleet;
class Machine;

// A TCP connection made inside the sprite (its own loopback), by its agent.
struct Dialed {
  int fd = -1;        // connected, non-blocking; the caller owns it
  std::string error;  // strerror text when fd < 0 ("Connection refused")
};
asio::awaitable<Dialed> dial(std::shared_ptr<Machine> machine, std::string ip, int port);

// What an init message asks for, or why it cannot be served.
struct ProxyTarget {
  std::string host;                    // as the client named it ("localhost" when empty)
  int port = 0;                        // 1-65535
  std::vector<std::string> addresses;  // the IPs to try inside the sprite, in order
  std::string error;                   // set when the init is not acceptable
};

// Parses and checks the init message (spec §9 step 2). Only the sprite's
// own addresses are reachable: localhost, the sprite's name, loopback and
// unspecified IPs (0.0.0.0 and :: reach loopback, as on Linux).
ProxyTarget parse_proxy_init(std::string_view text, const std::string& sprite_name);
// "host:port", with brackets around an IPv6 literal (Go's JoinHostPort).
std::string join_host_port(const std::string& host, int port);

class ProxyApi {
 public:
  explicit ProxyApi(Fleet& fleet) : fleet_(fleet) {}

  // `name` is an existing sprite; target.segments[3] == "proxy".
  asio::awaitable<void> serve(HttpExchange& exchange, const proto::Target& target,
                              const std::string& name);

 private:
  Fleet& fleet_;
};

}  // namespace spritescript::engine
