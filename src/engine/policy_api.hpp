// A sprite's policies (spec §8): the network policy, which the egress path
// enforces (egress.hpp), and the privileges and resources policies, which
// are stored and reported but not enforced locally (docs/networking.md).
// Everything under /v1/sprites/{name}/policy/.
//
// Policies are sprite configuration, kept in <sprite dir>/policy/ beside
// the filesystem layer: a checkpoint restore leaves them as they are, and
// the sprite reads network.json at /.sprite/policy/network.json.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "engine/http_server.hpp"
#include "proto/http_target.hpp"
#include "proto/network_policy.hpp"

namespace spritescript::engine {

class Store;

class NetworkPolicies {
 public:
  explicit NetworkPolicies(Store& store) : store_(store) {}

  // The sprite's policy; unrestricted when none was set (or it is unknown).
  std::shared_ptr<const proto::NetworkPolicy> get(const std::string& name);
  // Persists, then publishes and tells the observers. Throws
  // std::runtime_error when the disk write fails (nothing changed then).
  void set(const std::string& name, proto::NetworkPolicy policy);

  using Observer = std::function<void(const std::string& name)>;
  std::uint64_t observe(Observer observer);
  void unobserve(std::uint64_t id);

 private:
  Store& store_;
  // By sprite id: a sprite deleted and created again under its name starts
  // unrestricted, whatever was cached.
  std::map<std::string, std::shared_ptr<const proto::NetworkPolicy>> cache_;
  std::map<std::uint64_t, Observer> observers_;
  std::uint64_t next_observer_ = 1;
};

class PolicyApi {
 public:
  PolicyApi(Store& store, NetworkPolicies& network) : store_(store), network_(network) {}

  // `name` is an existing sprite; target.segments[3] == "policy".
  HttpResponse handle(const HttpRequest& request, const proto::Target& target,
                      const std::string& name);

 private:
  HttpResponse network(const HttpRequest& request, const std::string& name);
  HttpResponse stored(const HttpRequest& request, const std::string& name, const std::string& kind);

  Store& store_;
  NetworkPolicies& network_;
};

}  // namespace spritescript::engine
