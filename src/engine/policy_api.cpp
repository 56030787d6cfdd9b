#include "engine/policy_api.hpp"

#include <boost/json.hpp>

#include <fstream>
#include <map>
#include <sstream>

#include "engine/api.hpp"
#include "engine/sprite_dir.hpp"
#include "engine/store.hpp"

namespace json = boost::json;

namespace spritescript::engine {
namespace {

std::optional<json::value> read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream text;
  text << in.rdbuf();
  json::error_code ec;
  json::value v = json::parse(text.str(), ec);
  if (ec) return std::nullopt;
  return v;
}

std::string json_body(const json::value& v) {
  return json::serialize(v);
}

// "" when `v` is an acceptable privileges policy (spec §8.4; camelCase, as
// the JS SDK sends it).
std::string privileges_problem(const json::value& v) {
  const json::object* o = v.if_object();
  if (!o) return "the privileges policy must be a JSON object";
  for (const auto& [key, value] : *o) {
    if (key == "profile") {
      const json::string* p = value.if_string();
      if (!p || (*p != "" && *p != "minimal" && *p != "standard" && *p != "privileged")) {
        return R"("profile" must be "", "minimal", "standard" or "privileged")";
      }
    } else if (key == "devices") {
      const json::array* devices = value.if_array();
      bool strings = devices != nullptr;
      if (devices) {
        for (const auto& d : *devices) strings = strings && d.is_string();
      }
      if (!strings) return R"("devices" must be an array of strings)";
    } else if (key == "noNewPrivileges" || key == "no_new_privileges") {
      if (!value.is_bool()) return R"("noNewPrivileges" must be true or false)";
    } else {
      return "unknown field \"" + std::string(key) +
             R"x(" (expected "profile", "devices", "noNewPrivileges"))x";
    }
  }
  return "";
}

std::string resources_problem(const json::value& v) {
  const json::object* o = v.if_object();
  if (!o) return "the resources policy must be a JSON object";
  for (const auto& [key, value] : *o) {
    if (key != "memory")
      return "unknown field \"" + std::string(key) + R"x(" (expected "memory"))x";
    const json::object* memory = value.if_object();
    if (!memory) return R"("memory" must be an object like {"limit_mb":1024,"autoscale":false})";
    for (const auto& [field, x] : *memory) {
      if (field == "limit_mb" || field == "limitMB") {
        if (!x.is_int64() || x.as_int64() < 0) {
          return R"("memory.limit_mb" must be a whole number of MiB, 0 or more)";
        }
      } else if (field == "autoscale") {
        if (!x.is_bool()) return R"("memory.autoscale" must be true or false)";
      } else {
        return "unknown field \"memory." + std::string(field) +
               R"x(" (expected "limit_mb", "autoscale"))x";
      }
    }
  }
  return "";
}

json::value default_policy(const std::string& kind) {
  if (kind == "privileges") {
    return json::object{{"profile", ""}, {"devices", json::array{}}, {"noNewPrivileges", false}};
  }
  return json::object{{"memory", json::object{{"limit_mb", 0}, {"autoscale", false}}}};
}

}  // namespace

std::shared_ptr<const proto::NetworkPolicy> NetworkPolicies::get(const std::string& name) {
  static const auto unrestricted = std::make_shared<const proto::NetworkPolicy>();
  const Sprite* sprite = store_.get(name);
  if (!sprite) return unrestricted;
  if (auto it = cache_.find(sprite->id); it != cache_.end()) return it->second;
  auto policy = unrestricted;
  if (auto v = read_json_file(sprite_dir::policy(store_.dir(name)) / "network.json")) {
    std::string ignored;
    if (auto parsed = proto::parse_network_policy(*v, ignored)) {
      policy = std::make_shared<const proto::NetworkPolicy>(std::move(*parsed));
    }
  }
  cache_[sprite->id] = policy;
  return policy;
}

void NetworkPolicies::set(const std::string& name, proto::NetworkPolicy policy) {
  const Sprite* sprite = store_.get(name);
  if (!sprite) throw std::runtime_error("no sprite named " + name);
  const std::filesystem::path dir = sprite_dir::policy(store_.dir(name));
  std::filesystem::create_directories(dir);
  write_file_atomically(dir / "network.json", json::serialize(proto::to_json(policy)) + "\n");
  cache_[sprite->id] = std::make_shared<const proto::NetworkPolicy>(std::move(policy));
  // Observers may unobserve while being told: iterate over a copy.
  auto observers = observers_;
  for (auto& [id, observer] : observers) observer(name);
}

std::uint64_t NetworkPolicies::observe(Observer observer) {
  observers_[next_observer_] = std::move(observer);
  return next_observer_++;
}

void NetworkPolicies::unobserve(std::uint64_t id) {
  observers_.erase(id);
}

HttpResponse PolicyApi::handle(const HttpRequest& request, const proto::Target& target,
                               const std::string& name) {
  const auto& seg = target.segments;
  if (seg.size() == 5 && seg[4] == "network") return network(request, name);
  if (seg.size() == 5 && (seg[4] == "privileges" || seg[4] == "resources")) {
    return stored(request, name, seg[4]);
  }
  return api_error(404, "not_found",
                   "no such policy: use /policy/network, /policy/privileges or /policy/resources");
}

HttpResponse PolicyApi::network(const HttpRequest& request, const std::string& name) {
  if (request.method == "GET") {
    return {200, json_body(proto::to_json(*network_.get(name)))};
  }
  if (request.method != "POST") {
    return api_error(405, "method_not_allowed",
                     request.method + " is not allowed on the network policy (GET or POST)");
  }
  json::error_code ec;
  json::value body = json::parse(request.body, ec);
  std::string problem;
  std::optional<proto::NetworkPolicy> policy;
  if (ec) {
    problem = "the body is not JSON; send {\"rules\":[...]}";
  } else {
    policy = proto::parse_network_policy(body, problem);
  }
  if (!policy) return api_error(400, "invalid_policy", "invalid network policy: " + problem);
  try {
    network_.set(name, std::move(*policy));
  } catch (const std::exception& e) {
    return api_error(500, "internal", std::string("cannot save the policy: ") + e.what());
  }
  return {204, ""};
}

// privileges and resources: validated, stored, reported; not enforced.
HttpResponse PolicyApi::stored(const HttpRequest& request, const std::string& name,
                               const std::string& kind) {
  const std::filesystem::path dir = sprite_dir::policy(store_.dir(name));
  const std::filesystem::path file = dir / (kind + ".json");
  if (request.method == "GET") {
    return {200, json_body(read_json_file(file).value_or(default_policy(kind)))};
  }
  if (request.method == "DELETE") {
    std::error_code ignored;
    std::filesystem::remove(file, ignored);
    return {204, ""};
  }
  if (request.method != "POST") {
    return api_error(
        405, "method_not_allowed",
        request.method + " is not allowed on the " + kind + " policy (GET, POST or DELETE)");
  }
  json::error_code ec;
  json::value body = json::parse(request.body, ec);
  std::string problem = ec                     ? "the body is not JSON"
                        : kind == "privileges" ? privileges_problem(body)
                                               : resources_problem(body);
  if (!problem.empty())
    return api_error(400, "invalid_policy", "invalid " + kind + " policy: " + problem);
  // Fields left out keep their defaults, so GET always shows every field.
  // A field's other spelling (the JS SDK's camelCase, or snake_case; spec
  // §16 item 30) is stored as sent, in place of the default's.
  json::object merged = default_policy(kind).as_object();
  auto put = [](json::object& into, std::string_view key, const json::value& value) {
    static const std::map<std::string_view, std::string_view> other_spelling = {
        {"no_new_privileges", "noNewPrivileges"},
        {"noNewPrivileges", "no_new_privileges"},
        {"limitMB", "limit_mb"},
        {"limit_mb", "limitMB"}};
    if (auto it = other_spelling.find(key); it != other_spelling.end()) into.erase(it->second);
    into[key] = value;
  };
  for (const auto& [key, value] : body.as_object()) {
    if (key == "memory") {
      for (const auto& [field, x] : value.as_object()) put(merged["memory"].as_object(), field, x);
    } else {
      put(merged, key, value);
    }
  }
  try {
    std::filesystem::create_directories(dir);
    write_file_atomically(file, json::serialize(merged) + "\n");
  } catch (const std::exception& e) {
    return api_error(500, "internal", "cannot save the " + kind + " policy: " + e.what());
  }
  return {200, json_body(merged)};
}

}  // namespace spritescript::engine
