// A sprite's way out (docs/networking.md, "Egress"). Its network namespace
// has loopback only; the agent opens two sockets inside it and hands them to
// the engine, which serves them from outside:
//
//   HTTP proxy  127.0.0.53:3128  CONNECT host:port, or GET http://host/...
//   resolver    127.0.0.53:53    A and AAAA queries
//
// Both apply the sprite's network policy (policy_api.hpp) to every name,
// when asked: a denied name gets 403 from the proxy and REFUSED from the
// resolver. A policy change applies to the next request, and connections
// to names it now denies are cut. Anything else that tries to leave the
// sprite finds no route.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace spritescript::engine {

class Fleet;
class Machine;
class NetworkPolicies;

class Egress {
 public:
  struct Options {
    // Names resolved to these addresses instead of asking the host's
    // resolver (`serve --resolve NAME=IP`): tests point names at servers on
    // the host's loopback, which sprites otherwise never reach.
    std::map<std::string, std::vector<std::string>> hosts;
  };

  // Reads `serve --resolve` entries ("NAME=IP[,IP...]"); nullopt with
  // `error` set (one line) when one is malformed.
  static std::optional<Options> parse_options(const std::vector<std::string>& resolve,
                                              std::string& error);

  // Serves every sandbox that starts (Fleet::on_machine_up).
  Egress(Fleet& fleet, NetworkPolicies& policies, Options options);
  ~Egress();
  Egress(const Egress&) = delete;
  Egress& operator=(const Egress&) = delete;

  struct Core;

 private:
  Fleet& fleet_;
  NetworkPolicies& policies_;
  std::uint64_t observer_ = 0;
  std::shared_ptr<Core> core_;
};

}  // namespace spritescript::engine
