#include "proto/models.hpp"

#include "proto/json_fields.hpp"
#include "proto/values.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace spritescript::proto {

namespace json = boost::json;

namespace {

json::object parse_object(std::string_view body, std::string_view what) {
  json::error_code ec;
  json::value value = json::parse(body, ec);
  if (ec || !value.is_object()) {
    throw ModelError("the server's " + std::string(what) + " is not a JSON object");
  }
  return std::move(value.as_object());
}

using fields::flag_of;
using fields::text_of;

int integer(const json::object& o, std::string_view key) {
  return fields::int_of(o, key).value_or(0);
}

Sprite sprite_from(const json::object& o) {
  Sprite s;
  s.name = text_of(o, "name");
  if (s.name.empty()) throw ModelError("the server sent a sprite without a name");
  s.id = text_of(o, "id");
  s.organization = text_of(o, "organization");
  if (s.organization.empty()) s.organization = text_of(o, "org_slug");
  s.status = text_of(o, "status");
  s.url = text_of(o, "url");
  if (const auto* us = o.if_contains("url_settings"); us && us->is_object()) {
    s.url_settings.auth = text_of(us->as_object(), "auth");
    s.url_settings.private_access = text_of(us->as_object(), "private_access");
  }
  if (const auto* labels = o.if_contains("labels"); labels && labels->is_array()) {
    for (const auto& label : labels->as_array()) {
      if (label.is_string()) s.labels.emplace_back(label.as_string());
    }
  }
  s.created_at = text_of(o, "created_at");
  s.updated_at = text_of(o, "updated_at");
  s.last_running_at = text_of(o, "last_running_at");
  s.json = json::serialize(o);
  return s;
}

json::object url_settings_json(const UrlSettings& us) {
  json::object o;
  if (!us.auth.empty()) o["auth"] = us.auth;
  if (!us.private_access.empty()) o["private_access"] = us.private_access;
  return o;
}

json::array string_array(const std::vector<std::string>& values) {
  json::array a;
  for (const auto& v : values) a.emplace_back(v);
  return a;
}

}  // namespace

Sprite parse_sprite(std::string_view body) {
  return sprite_from(parse_object(body, "sprite"));
}

SpritePage parse_sprite_page(std::string_view body) {
  auto o = parse_object(body, "sprite list");
  SpritePage page;
  if (const auto* sprites = o.if_contains("sprites"); sprites && sprites->is_array()) {
    for (const auto& entry : sprites->as_array()) {
      if (!entry.is_object()) throw ModelError("the server's sprite list has a non-object entry");
      page.sprites.push_back(sprite_from(entry.as_object()));
    }
  }
  page.has_more = flag_of(o, "has_more");
  page.next_continuation_token = text_of(o, "next_continuation_token");
  // Go reads these from `org`, JS from the top level (§2.3): take either.
  const json::object* counts = &o;
  if (const auto* org = o.if_contains("org"); org && org->is_object()) counts = &org->as_object();
  page.running = integer(*counts, "running");
  page.warm = integer(*counts, "warm");
  page.cold = integer(*counts, "cold");
  return page;
}

std::string to_json(const CreateSpriteRequest& request) {
  json::object o;
  o["name"] = request.name;
  if (!request.labels.empty()) o["labels"] = string_array(request.labels);
  if (request.url_settings) o["url_settings"] = url_settings_json(*request.url_settings);
  if (!request.environment.empty()) {
    json::object env;
    for (const auto& [k, v] : request.environment) env[k] = v;
    o["environment"] = std::move(env);
  }
  if (request.wait_for_capacity) o["wait_for_capacity"] = true;
  return json::serialize(o);
}

std::string to_json(const UpdateSpriteRequest& request) {
  json::object o;
  if (request.url_settings) o["url_settings"] = url_settings_json(*request.url_settings);
  if (request.labels) o["labels"] = string_array(*request.labels);
  return json::serialize(o);
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    bool unreserved = (u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') ||
                      u == '-' || u == '.' || u == '_' || u == '~';
    if (unreserved) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

std::string exec_query(const ExecOptions& options) {
  std::string q;
  auto add = [&q](std::string_view key, std::string_view value) {
    if (!q.empty()) q.push_back('&');
    q.append(key);
    q.push_back('=');
    q.append(percent_encode(value));
  };
  for (const auto& arg : options.argv) add("cmd", arg);
  if (!options.argv.empty()) add("path", options.argv.front());
  for (const auto& [k, v] : options.env) add("env", k + "=" + v);
  if (!options.dir.empty()) add("dir", options.dir);
  if (options.tty) {
    add("tty", "true");
    if (options.cols > 0) add("cols", std::to_string(options.cols));
    if (options.rows > 0) add("rows", std::to_string(options.rows));
  }
  add("stdin", options.stdin ? "true" : "false");
  if (options.max_run_after_disconnect) {
    add("max_run_after_disconnect", format_go_duration(*options.max_run_after_disconnect));
  }
  return q;
}

std::vector<SessionEntry> parse_sessions(std::string_view body) {
  auto o = parse_object(body, "session list");
  std::vector<SessionEntry> sessions;
  const auto* list = o.if_contains("sessions");
  if (!list || !list->is_array()) return sessions;  // Go treats it as empty (§5.1)
  for (const auto& entry : list->as_array()) {
    if (!entry.is_object()) continue;
    const auto& e = entry.as_object();
    SessionEntry s;
    s.id = text_of(e, "id");
    s.command = text_of(e, "command");
    s.workdir = text_of(e, "workdir");
    s.created = text_of(e, "created");
    s.is_active = flag_of(e, "is_active");
    s.tty = flag_of(e, "tty");
    if (const auto* bps = e.if_contains("bytes_per_second"); bps && bps->is_number()) {
      s.bytes_per_second = bps->to_number<double>();
      if (std::isnan(s.bytes_per_second)) s.bytes_per_second = 0;  // Boost.JSON reads 0e320 as NaN
    }
    sessions.push_back(std::move(s));
  }
  return sessions;
}

namespace {

Checkpoint checkpoint_from(const json::object& o) {
  Checkpoint c;
  c.id = text_of(o, "id");
  if (c.id.empty()) throw ModelError("the server sent a checkpoint without an id");
  c.create_time = text_of(o, "create_time");
  if (c.create_time.empty()) c.create_time = text_of(o, "created_at");
  c.comment = text_of(o, "comment");
  if (const auto* h = o.if_contains("history"); h && h->is_array()) {
    for (const auto& item : h->as_array()) {
      if (item.is_string()) c.history.emplace_back(item.as_string());
    }
  }
  c.is_auto = flag_of(o, "is_auto");
  c.source_id = text_of(o, "source_id");
  c.health = text_of(o, "health");
  c.current = flag_of(o, "current");
  return c;
}

}  // namespace

Checkpoint parse_checkpoint(std::string_view body) {
  return checkpoint_from(parse_object(body, "checkpoint"));
}

std::vector<Checkpoint> parse_checkpoints(std::string_view body) {
  json::error_code ec;
  json::value value = json::parse(body, ec);
  if (ec || !value.is_array()) throw ModelError("the server's checkpoint list is not a JSON array");
  std::vector<Checkpoint> out;
  for (const auto& entry : value.as_array()) {
    if (entry.is_object()) out.push_back(checkpoint_from(entry.as_object()));
  }
  return out;
}

std::string checkpoint_id_in(std::string_view text) {
  constexpr std::string_view kBefore = "Checkpoint ";
  constexpr std::string_view kAfter = " created";
  auto at = text.find(kBefore);
  if (at == std::string_view::npos) return {};
  at += kBefore.size();
  auto end = text.find(kAfter, at);
  if (end == std::string_view::npos || end == at) return {};
  std::string_view id = text.substr(at, end - at);
  if (id.find(' ') != std::string_view::npos) return {};
  return std::string(id);
}

std::optional<ProgressEvent> parse_progress_event(std::string_view line) {
  json::error_code ec;
  json::value value = json::parse(line, ec);
  if (ec || !value.is_object()) return std::nullopt;
  const auto& o = value.as_object();
  ProgressEvent e;
  e.type = text_of(o, "type");
  e.message = text_of(o, "message");
  if (e.message.empty()) e.message = text_of(o, "data");
  if (e.message.empty()) e.message = text_of(o, "error");
  if (const auto* code = o.if_contains("exit_code"); code && code->is_number()) {
    e.exit_code = integer(o, "exit_code");
  }
  if (const auto* ts = o.if_contains("timestamp"); ts && ts->is_number()) {
    e.timestamp = fields::int64_of(o, "timestamp");
  }
  e.json = std::string(line);
  return e;
}

// --- filesystem ------------------------------------------------------------------

namespace {

unsigned mode_of(const json::object& o, unsigned fallback) {
  return parse_octal_mode(text_of(o, "mode")).value_or(fallback);
}

const json::array* array_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_array() ? &v->as_array() : nullptr;
}

FsEntry fs_entry_from(const json::object& o) {
  FsEntry e;
  e.name = text_of(o, "name");
  e.path = text_of(o, "path");
  if (e.name.empty() && e.path.empty()) throw ModelError("the server sent an entry without a name");
  if (e.name.empty()) e.name = e.path.substr(e.path.find_last_of('/') + 1);
  e.type = text_of(o, "type");
  e.is_dir = flag_of(o, "isDir") || e.type == "directory";
  if (e.type.empty()) e.type = e.is_dir ? "directory" : "file";
  e.size = fields::int64_of(o, "size").value_or(0);
  e.mode = mode_of(o, e.is_dir ? 0755 : 0644);
  e.mod_time = text_of(o, "modTime");
  return e;
}

}  // namespace

FsListing parse_fs_listing(std::string_view body) {
  auto o = parse_object(body, "directory listing");
  FsListing listing;
  listing.path = text_of(o, "path");
  if (const auto* entries = array_of(o, "entries")) {
    for (const auto& entry : *entries) {
      if (!entry.is_object())
        throw ModelError("the server's directory listing has a non-object entry");
      listing.entries.push_back(fs_entry_from(entry.as_object()));
    }
  }
  return listing;
}

FsWritten parse_fs_written(std::string_view body) {
  auto o = parse_object(body, "write answer");
  FsWritten w;
  w.path = text_of(o, "path");
  w.size = fields::int64_of(o, "size").value_or(0);
  w.mode = mode_of(o, 0644);
  return w;
}

std::vector<std::string> parse_fs_deleted(std::string_view body) {
  return fields::strings_of(parse_object(body, "delete answer"), "deleted");
}

FsMove parse_fs_renamed(std::string_view body) {
  auto o = parse_object(body, "rename answer");
  return FsMove{text_of(o, "source"), text_of(o, "dest")};
}

FsCopied parse_fs_copied(std::string_view body) {
  auto o = parse_object(body, "copy answer");
  FsCopied c;
  if (const auto* copied = array_of(o, "copied")) {
    for (const auto& item : *copied) {
      if (!item.is_object()) continue;
      c.copied.push_back(
          FsMove{text_of(item.as_object(), "source"), text_of(item.as_object(), "dest")});
    }
  }
  c.total_bytes = fields::int64_of(o, "totalBytes").value_or(0);
  return c;
}

std::vector<FsChange> parse_fs_changes(std::string_view body) {
  auto o = parse_object(body, "answer");
  std::vector<FsChange> out;
  if (const auto* affected = array_of(o, "affected")) {
    for (const auto& item : *affected) {
      if (!item.is_object()) continue;
      const auto& a = item.as_object();
      FsChange change;
      change.path = text_of(a, "path");
      if (a.contains("mode")) change.mode = parse_octal_mode(text_of(a, "mode"));
      change.uid = fields::int64_of(a, "uid");
      change.gid = fields::int64_of(a, "gid");
      out.push_back(std::move(change));
    }
  }
  return out;
}

// --- services --------------------------------------------------------------------

std::string to_json(const ServiceDefinition& d) {
  json::object o;
  o["cmd"] = d.cmd;
  if (!d.args.empty()) o["args"] = string_array(d.args);
  if (!d.env.empty()) {
    json::object env;
    for (const auto& [k, v] : d.env) env[k] = v;
    o["env"] = std::move(env);
  }
  if (!d.dir.empty()) o["dir"] = d.dir;
  if (!d.needs.empty()) o["needs"] = string_array(d.needs);
  if (d.http_port) o["http_port"] = *d.http_port;
  return json::serialize(o);
}

namespace {

ServiceState service_state_from(const json::object& o) {
  ServiceState s;
  s.name = text_of(o, "name");
  s.status = text_of(o, "status");
  s.pid = fields::int_of(o, "pid");
  s.started_at = text_of(o, "started_at");
  s.error = text_of(o, "error");
  s.restart_count = integer(o, "restart_count");
  s.next_restart_at = text_of(o, "next_restart_at");
  return s;
}

Service service_from(const json::object& o) {
  Service s;
  s.name = text_of(o, "name");
  if (s.name.empty()) throw ModelError("the server sent a service without a name");
  s.cmd = text_of(o, "cmd");
  s.args = fields::strings_of(o, "args");
  if (const auto* env = o.if_contains("env"); env && env->is_object()) {
    for (const auto& [k, v] : env->as_object()) {
      if (v.is_string()) s.env[std::string(k)] = std::string(v.as_string());
    }
  }
  s.dir = text_of(o, "dir");
  s.needs = fields::strings_of(o, "needs");
  s.http_port = fields::int_of(o, "http_port");
  if (const auto* state = o.if_contains("state"); state && state->is_object()) {
    s.state = service_state_from(state->as_object());
  }
  s.json = json::serialize(o);
  return s;
}

}  // namespace

Service parse_service(std::string_view body) {
  return service_from(parse_object(body, "service"));
}

std::vector<Service> parse_services(std::string_view body) {
  json::error_code ec;
  json::value value = json::parse(body, ec);
  const json::array* list = nullptr;
  if (!ec && value.is_array()) list = &value.as_array();
  if (!ec && value.is_object()) list = array_of(value.as_object(), "services");
  if (!list) throw ModelError("the server's service list is not a JSON array");
  std::vector<Service> out;
  for (const auto& entry : *list) {
    if (!entry.is_object()) throw ModelError("the server's service list has a non-object entry");
    out.push_back(service_from(entry.as_object()));
  }
  return out;
}

// --- policies --------------------------------------------------------------------

NetworkPolicy parse_network_policy_body(std::string_view body) {
  auto o = parse_object(body, "network policy");
  NetworkPolicy policy;
  const auto* rules = o.if_contains("rules");
  if (!rules || rules->is_null()) return policy;
  if (!rules->is_array()) throw ModelError("the server's network policy has no rules array");
  for (const auto& item : rules->as_array()) {
    if (!item.is_object()) throw ModelError("the server's network policy has a non-object rule");
    const auto& r = item.as_object();
    PolicyRule rule;
    rule.domain = text_of(r, "domain");
    rule.action = text_of(r, "action");
    rule.include = text_of(r, "include");
    policy.rules.push_back(std::move(rule));
  }
  return policy;
}

std::string network_policy_body(const NetworkPolicy& policy) {
  json::array rules;
  for (const PolicyRule& rule : policy.rules) {
    json::object r;
    if (!rule.domain.empty()) r["domain"] = rule.domain;
    if (!rule.action.empty()) r["action"] = rule.action;
    if (!rule.include.empty()) r["include"] = rule.include;
    rules.push_back(std::move(r));
  }
  json::object o;
  o["rules"] = std::move(rules);
  return json::serialize(o);
}

}  // namespace spritescript::proto
