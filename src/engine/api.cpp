#include "engine/api.hpp"

#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <deque>

#include "engine/fleet.hpp"
#include "proto/api_error.hpp"
#include "proto/http_target.hpp"
#include "proto/values.hpp"

namespace json = boost::json;

namespace spritescript::engine {
namespace {

constexpr int kMaxListResults = 50;

HttpResponse error(int status, std::string code, std::string message) {
  return api_error(status, std::move(code), std::move(message));
}

HttpResponse json_response(int status, const json::value& v) {
  return {status, json::serialize(v)};
}

std::string now_rfc3339() {
  return proto::format_rfc3339(std::chrono::system_clock::now());
}

std::string new_uuid() {
  std::string h = random_hex(16);
  return h.substr(0, 8) + "-" + h.substr(8, 4) + "-4" + h.substr(13, 3) + "-a" + h.substr(17, 3) +
         "-" + h.substr(20, 12);
}

struct RequestError {
  HttpResponse response;
};

json::object parse_object(const std::string& body) {
  if (body.empty()) return {};
  json::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) {
    throw RequestError{error(400, "invalid_json", "the request body is not a JSON object")};
  }
  return std::move(v.as_object());
}

std::vector<std::string> parse_labels(const json::value& v) {
  if (!v.is_array())
    throw RequestError{error(400, "invalid_labels", "labels must be an array of strings")};
  std::vector<std::string> labels;
  for (const auto& item : v.as_array()) {
    if (!item.is_string()) {
      throw RequestError{error(400, "invalid_labels", "labels must be an array of strings")};
    }
    labels.emplace_back(item.as_string());
  }
  return labels;
}

void apply_url_settings(Sprite& s, const json::value& v) {
  if (v.is_null()) return;
  if (!v.is_object()) {
    throw RequestError{error(400, "invalid_url_settings", "url_settings must be an object")};
  }
  const json::object& o = v.as_object();
  if (const json::value* auth = o.if_contains("auth")) {
    if (!auth->is_string() || (auth->as_string() != "sprite" && auth->as_string() != "public")) {
      throw RequestError{
          error(400, "invalid_url_settings", R"(url_settings.auth must be "sprite" or "public")")};
    }
    s.url_auth = std::string(auth->as_string());
  }
  if (const json::value* pa = o.if_contains("private_access"); pa && pa->is_string()) {
    s.private_access = std::string(pa->as_string());
  }
}

json::object sprite_json(const Sprite& s, std::uint16_t port, const Fleet* fleet) {
  json::object o = to_json(s);
  if (fleet) {
    o["status"] = fleet->status(s.name);
    if (auto at = fleet->last_running_at(s.name)) o["last_running_at"] = *at;
  }
  o["organization"] = "local";
  o["org_slug"] = "local";  // list entries: JS reads either, Go only organization (§2.1)
  o["url"] = "http://" + s.name + ".localhost:" + std::to_string(port);
  return o;
}

HttpResponse unauthorized() {
  return error(401, "unauthorized",
               "missing or wrong token: send Authorization: Bearer <token> "
               "(the local engine keeps it in <state dir>/token)");
}

}  // namespace

bool same_secret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

HttpResponse api_error(int status, std::string code, std::string message) {
  proto::ApiError e;
  e.status = status;
  e.code = std::move(code);
  e.message = std::move(message);
  return {status, proto::error_body(e)};
}

std::optional<HttpResponse> websocket_refusal(const HttpRequest& request, const std::string& what) {
  if (request.method != "GET") {
    return api_error(405, "method_not_allowed", request.method + " is not allowed on " + what);
  }
  if (!request.websocket) {
    return api_error(400, "websocket_required", what + " needs a WebSocket upgrade");
  }
  return std::nullopt;
}

Api::Api(Store& store, std::string token, std::uint16_t port, Fleet* fleet)
    : store_(store),
      token_(std::move(token)),
      port_(port),
      fleet_(fleet),
      exec_(fleet ? std::make_unique<ExecApi>(*fleet) : nullptr),
      checkpoints_(fleet ? std::make_unique<CheckpointApi>(*fleet, store) : nullptr),
      fs_(fleet ? std::make_unique<FsApi>(*fleet, store) : nullptr),
      services_(fleet ? std::make_unique<ServicesApi>(*fleet, store) : nullptr),
      ports_(fleet ? std::make_unique<PortMonitor>(*fleet) : nullptr),
      proxy_(fleet ? std::make_unique<ProxyApi>(*fleet) : nullptr),
      sprite_url_(fleet ? std::make_unique<SpriteUrl>(*fleet, store, *services_, token_) : nullptr),
      network_policies_(store),
      policies_(store, network_policies_) {
  if (exec_) exec_->set_ports(ports_.get());
}

bool Api::authorized(const HttpRequest& request) const {
  return same_secret(request.authorization, "Bearer " + token_);
}

// The organization's counts, as list (top level and `org`) and the list
// watch (`org`) report them (spec §2.3).
json::object Api::org_json() const {
  int counts[3] = {0, 0, 0};
  for (const Sprite* s : store_.list("", "")) {
    std::string status = fleet_ ? fleet_->status(s->name) : s->status;
    counts[status == "running" ? 0 : status == "warm" ? 1 : 2]++;
  }
  json::object org;
  org["name"] = "local";
  org["running"] = counts[0];
  org["warm"] = counts[1];
  org["cold"] = counts[2];
  org["running_limit"] = 1000;
  org["warm_limit"] = 1000;
  return org;
}

// One NDJSON line of the list watch (spec §2.3.1).
std::string Api::watch_line(const std::string& name) const {
  json::object line;
  line["name"] = name;
  line["status"] = store_.get(name) ? fleet_->status(name) : "deleted";
  line["running_version"] = "local";
  if (auto at = fleet_->last_running_at(name)) line["last_running_at"] = *at;
  line["timestamp"] = now_rfc3339();
  line["org"] = org_json();
  return json::serialize(line) + "\n";
}

// GET /v1/sprites with Accept: application/x-ndjson: the current state of
// each matching sprite, then a line per status change, and a heartbeat line
// when nothing happened for a while.
asio::awaitable<void> Api::watch(HttpExchange& exchange, const std::string& prefix) {
  auto executor = co_await asio::this_coro::executor;
  auto wake = std::make_shared<asio::steady_timer>(executor);
  auto changed = std::make_shared<std::deque<std::string>>();
  auto id = fleet_->observe([wake, changed, prefix](const std::string& name) {
    if (name.compare(0, prefix.size(), prefix) != 0) return;
    changed->push_back(name);
    wake->cancel();
  });
  struct Unobserve {
    Fleet* fleet;
    std::uint64_t id;
    ~Unobserve() { fleet->unobserve(id); }
  } unobserve{fleet_, id};
  bool open = co_await exchange.start_stream(200, "application/x-ndjson");
  for (const Sprite* s : store_.list(prefix, "")) {
    if (open) open = co_await exchange.write_chunk(watch_line(s->name));
  }
  while (open) {
    if (changed->empty()) {
      wake->expires_after(std::chrono::seconds(15));
      auto [ec] = co_await wake->async_wait(asio::as_tuple(asio::use_awaitable));
      if (!ec && changed->empty()) {
        open = co_await exchange.write_chunk(R"({"type":"heartbeat"})"
                                             "\n");
        continue;
      }
    }
    while (open && !changed->empty()) {
      std::string name = std::move(changed->front());
      changed->pop_front();
      open = co_await exchange.write_chunk(watch_line(name));
    }
  }
}

asio::awaitable<void> Api::serve(HttpExchange& exchange) {
  const HttpRequest& request = exchange.request();
  if (request.passthrough) {
    if (sprite_url_) {
      co_await sprite_url_->serve(exchange);
    } else {
      co_await exchange.respond(error(404, "not_found", "sprite URLs need a running engine"));
    }
    co_return;
  }
  auto target = proto::parse_target(request.target);
  if (fleet_ && authorized(request) && target && target->segments.size() == 2 &&
      target->segments[0] == "v1" && target->segments[1] == "sprites" && request.method == "GET" &&
      request.accept.find("application/x-ndjson") != std::string::npos) {
    co_await watch(exchange, target->param("prefix").value_or(""));
    co_return;
  }
  const Sprite* sprite = nullptr;
  if (authorized(request) && target && target->segments.size() >= 4 &&
      target->segments[0] == "v1" && target->segments[1] == "sprites" && fleet_) {
    sprite = store_.get(target->segments[2]);
  }
  if (!sprite) {  // everything else is plain request -> response
    co_await exchange.respond(handle(request));
    co_return;
  }
  const auto& seg = target->segments;
  const std::string name = sprite->name;
  const std::string sprite_id = sprite->id;
  if (seg[3] == "exec") {
    co_await exec_->serve(exchange, *target, name);
    co_return;
  }
  if (seg[3] == "checkpoint" || seg[3] == "checkpoints") {
    co_await checkpoints_->serve(exchange, *target, name);
    co_return;
  }
  if (seg[3] == "fs") {
    co_await fs_->serve(exchange, *target, name);
    co_return;
  }
  if (seg[3] == "services") {
    co_await services_->serve(exchange, *target, name);
    co_return;
  }
  if (seg[3] == "proxy") {
    co_await proxy_->serve(exchange, *target, name);
    co_return;
  }
  if (seg[3] == "policy") {
    co_await exchange.respond(policies_.handle(request, *target, name));
    co_return;
  }
  if (seg[3] == "ports") {
    co_await ports_->serve(exchange, *target, name);
    co_return;
  }
  if (seg.size() == 4 && seg[3] == "upgrade" && request.method == "POST") {
    // One runtime version locally: nothing to upgrade to.
    co_await exchange.respond({204, ""});
    co_return;
  }
  if (seg.size() == 4 && seg[3] == "restart" && request.method == "POST") {
    auto hold = fleet_->hold(name);
    fleet_->stop(name);
    std::string failure;
    try {
      co_await fleet_->wake(name);
    } catch (const std::exception& e) {
      failure = e.what();
    }
    if (!failure.empty()) {
      co_await exchange.respond(
          error(503, "sprite_unavailable", "cannot restart the sprite: " + failure));
      co_return;
    }
    json::object body;
    body["sprite_name"] = name;
    body["machine_id"] = sprite_id;
    body["message"] = "Sprite restarted";
    co_await exchange.respond(json_response(200, body));
    co_return;
  }
  if (seg.size() == 4 && seg[3] == "check" && request.method == "GET") {
    // Health probe: wake the sprite and run `true` in it.
    auto hold = fleet_->hold(name);
    auto started = std::chrono::steady_clock::now();
    json::object body;
    body["sprite_name"] = name;
    body["sprite_id"] = sprite_id;
    try {
      auto machine = co_await fleet_->wake(name);
      SpawnSpec probe;
      probe.argv.emplace_back("true");
      probe.dir = "/";
      auto spawned = co_await machine->spawn(probe);
      machine->on_exit(spawned.pid, [](int) {});  // nobody waits for `true`
      for (int fd : spawned.fds) ::close(fd);
      body["status"] = "ok";
      body["reason"] = nullptr;
    } catch (const std::exception& e) {
      body["status"] = "error";
      body["reason"] = e.what();
    }
    body["checked_at"] = now_rfc3339();
    body["elapsed"] =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    co_await exchange.respond(json_response(200, body));
    co_return;
  }
  co_await exchange.respond(handle(request));
}

HttpResponse Api::handle(const HttpRequest& request) {
  if (!authorized(request)) return unauthorized();
  auto target = proto::parse_target(request.target);
  if (!target) return error(400, "invalid_target", "the request path is not valid");
  const auto& seg = target->segments;
  const std::string& method = request.method;
  if (seg.size() < 2 || seg[0] != "v1" || seg[1] != "sprites") {
    return error(404, "not_found", "no such endpoint: " + request.target);
  }

  try {
    // /v1/sprites
    if (seg.size() == 2) {
      if (method == "GET") {
        std::string prefix = target->param("prefix").value_or("");
        int max = kMaxListResults;
        if (auto m = target->param("max_results")) {
          try {
            max = std::clamp(std::stoi(*m), 1, kMaxListResults);  // clamp, never reject (§2.3)
          } catch (const std::exception&) {
            return error(400, "invalid_max_results", "max_results must be a number");
          }
        }
        auto all = store_.list(prefix, target->param("continuation_token").value_or(""));
        json::array sprites;
        for (std::size_t i = 0; i < all.size() && i < static_cast<std::size_t>(max); ++i) {
          sprites.push_back(sprite_json(*all[i], port_, fleet_));
        }
        json::object body;
        const bool more = all.size() > static_cast<std::size_t>(max);
        body["sprites"] = std::move(sprites);
        body["has_more"] = more;
        if (more) body["next_continuation_token"] = all[static_cast<std::size_t>(max) - 1]->name;
        json::object org = org_json();
        for (const auto& [k, v] : org) body[k] = v;  // JS reads these at the top level
        body["org"] = std::move(org);                // Go reads them nested (§2.3)
        return json_response(200, body);
      }
      if (method == "POST") {
        json::object in = parse_object(request.body);
        const json::value* name_v = in.if_contains("name");
        if (!name_v || !name_v->is_string()) {
          return error(400, "invalid_name", "the body needs a \"name\" string");
        }
        Sprite s;
        s.name = std::string(name_v->as_string());
        if (std::string why = check_sprite_name(s.name); !why.empty()) {
          return error(400, "invalid_name", why + ": '" + s.name + "'");
        }
        if (store_.get(s.name)) {
          return error(409, "sprite_exists", "a sprite named '" + s.name + "' already exists");
        }
        if (const json::value* l = in.if_contains("labels")) s.labels = parse_labels(*l);
        if (const json::value* u = in.if_contains("url_settings")) apply_url_settings(s, *u);
        if (const json::value* e = in.if_contains("environment"); e && e->is_object()) {
          for (const auto& [k, v] : e->as_object()) {
            if (v.is_string()) s.environment[std::string(k)] = std::string(v.as_string());
          }
        }
        s.id = new_uuid();
        s.created_at = s.updated_at = now_rfc3339();
        const Sprite& created = store_.put(std::move(s));
        if (fleet_) fleet_->notify(created.name);
        return json_response(201, sprite_json(created, port_, fleet_));
      }
      return error(405, "method_not_allowed", method + " is not allowed on /v1/sprites");
    }

    const std::string& name = seg[2];
    // The optional control connection: say "not here" at once (spec §14.1).
    if (seg.size() == 4 && seg[3] == "control") {
      return error(404, "not_found", "the control connection is not supported");
    }
    const Sprite* sprite = store_.get(name);
    if (!sprite) return error(404, "sprite_not_found", "no sprite named '" + name + "'");

    if (seg.size() == 3) {
      if (method == "GET") return json_response(200, sprite_json(*sprite, port_, fleet_));
      if (method == "PUT") {
        json::object in = parse_object(request.body);
        Sprite updated = *sprite;
        if (const json::value* u = in.if_contains("url_settings")) apply_url_settings(updated, *u);
        if (const json::value* c = in.if_contains("clear_labels");
            c && c->is_bool() && c->as_bool()) {
          updated.labels.clear();
        }
        if (const json::value* l = in.if_contains("labels")) updated.labels = parse_labels(*l);
        updated.updated_at = now_rfc3339();
        return json_response(200, sprite_json(store_.put(std::move(updated)), port_, fleet_));
      }
      if (method == "DELETE") {
        if (fleet_) fleet_->forget(name);  // stops everything first
        const std::string deleted = name;  // `name` lives in the request's target
        store_.remove(deleted);
        if (fleet_) fleet_->notify(deleted);
        return {204, ""};
      }
      return error(405, "method_not_allowed", method + " is not allowed on a sprite");
    }
    return error(404, "not_found", "no such endpoint (yet) in the local engine: " + request.target);
  } catch (RequestError& e) {
    return std::move(e.response);
  }
}

}  // namespace spritescript::engine
