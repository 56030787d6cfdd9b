#include "client/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "proto/values.hpp"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <random>
#include <regex>

namespace spritescript::client {

namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
using Clock = std::chrono::steady_clock;

// The header's value ("" when absent); `name` in lower case.
std::string header_value(const Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < key.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(key[i])) == name[i];
    }
    if (same) return value;
  }
  return {};
}

// A glob that matches `name` only, for fs/list's `pattern`; "" when the
// name holds glob characters (their escaping differs between servers).
std::string literal_pattern(const std::string& name) {
  return name.find_first_of("*?[]\\") == std::string::npos ? name : std::string();
}

// The working directory to send: "/" unless given.
std::string dir_of(const FsOptions& options) {
  return options.working_dir.empty() ? std::string("/") : std::string(options.working_dir);
}

// uid/gid for fs/chown: digits as a number, anything else as a name.
boost::json::value owner_value(const std::string& who) {
  std::uint64_t id = 0;
  auto [end, ec] = std::from_chars(who.data(), who.data() + who.size(), id);
  boost::json::value value;
  if (ec == std::errc() && end == who.data() + who.size()) {
    value = id;
  } else {
    value = who;
  }
  return value;
}

}  // namespace

std::string sprite_path(const std::string& name) {
  return "/v1/sprites/" + proto::percent_encode(name);
}

std::string absolute_fs_path(const std::string& path, std::string_view working_dir) {
  std::string joined = path;
  if (path.empty() || path.front() != '/') {
    joined = std::string(working_dir.empty() ? "/" : working_dir) + "/" + path;
  }
  std::vector<std::string_view> parts;
  std::string_view rest(joined);
  while (!rest.empty()) {
    auto slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (auto part : parts) {
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

Client::Client(asio::any_io_executor executor, Config config)
    : executor_(std::move(executor)), config_(std::move(config)) {
  if (config_.api_url.empty()) {
    throw Error(ErrorKind::usage, "no API URL: set SPRITES_API_URL or use the local engine");
  }
  TransportOptions options;
  options.ca_file = config_.ca_file;
  options.insecure = config_.insecure;
  options.proxy = config_.proxy;
  options.max_connections = config_.max_connections;
  options.connect_timeout = config_.timeouts.connect;
  transport_ = std::make_unique<Transport>(executor_, Endpoint::parse(config_.api_url), options);
  if (config_.insecure && transport_->endpoint().tls) {
    std::fprintf(stderr,
                 "spritescript: warning: TLS certificate verification is off "
                 "(SPRITES_INSECURE)\n");
  }
}

Client::~Client() = default;

Request Client::make(std::string method, std::string target) const {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  if (!config_.token.empty()) r.headers.emplace_back("Authorization", "Bearer " + config_.token);
  r.headers.emplace_back("User-Agent", config_.user_agent);
  return r;
}

bool Client::retryable_status(int status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

void Client::trace_answer(const std::string& what, const std::string& target, int status,
                          Clock::time_point start) const {
  if (!config_.trace) return;
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  trace(what + " " + target + " -> " + std::to_string(status) + " (" + std::to_string(ms) + " ms)");
}

void Client::trace(const std::string& line) const {
  if (!config_.trace) return;
  // Exec environments carry secrets: keep the names, hide the values.
  static const std::regex env_value("([?&]env=[^&=%\\s]*)(%3D|=)[^&\\s]*");
  std::string shown = std::regex_replace(line, env_value, "$1$2***");
  std::fprintf(stderr, "spritescript trace: %s\n", shown.c_str());
}

asio::awaitable<void> Client::backoff(int attempt, std::optional<std::chrono::seconds> retry_after,
                                      const std::string& op) {
  Millis delay;
  if (retry_after) {
    delay = std::chrono::duration_cast<Millis>(*retry_after);
  } else {
    // Full jitter (AWS architecture blog): uniform in [0, min(cap, base*2^n)].
    auto ceiling = std::min<std::int64_t>(config_.retry.max_delay.count(),
                                          config_.retry.base_delay.count() << attempt);
    static thread_local std::minstd_rand rng{std::random_device{}()};
    delay = Millis(std::uniform_int_distribution<std::int64_t>(ceiling / 2, ceiling)(rng));
  }
  trace(op + ": retrying in " + std::to_string(delay.count()) + " ms");
  asio::steady_timer timer(executor_, delay);
  auto [ec] = co_await timer.async_wait(kAsTuple);
  if (ec) throw Error(ErrorKind::cancelled, op + ": cancelled");
}

asio::awaitable<Response> Client::request(Request request, bool idempotent, Millis timeout,
                                          const std::string& op) {
  const int attempts = std::max(1, config_.retry.max_attempts);
  for (int attempt = 0;; ++attempt) {
    const bool more = attempt + 1 < attempts;
    auto start = Clock::now();
    std::optional<std::chrono::seconds> retry_after;
    try {
      Response res = co_await transport_->send(request, timeout, idempotent);
      trace_answer(request.method, request.target, res.status, start);
      // A 429 refuses before doing anything: even a create may try again.
      bool retry = retryable_status(res.status) && (idempotent || res.status == 429) && more;
      if (!retry) co_return res;
      retry_after =
          error_from_response(op, res.status, res.body, res.header("Retry-After")).retry_after();
      if (retry_after && *retry_after > config_.retry.max_retry_after) co_return res;
    } catch (const Error& e) {
      trace(request.method + " " + request.target + " failed: " + e.what());
      if (e.kind() != ErrorKind::network || !idempotent || !more) throw;
    }
    co_await backoff(attempt, retry_after, op);
  }
}

asio::awaitable<Response> Client::expect(Request request, bool idempotent, Millis timeout,
                                         const std::string& op, int ok_low, int ok_high) {
  Response res = co_await this->request(std::move(request), idempotent, timeout, op);
  if (res.status < ok_low || res.status > ok_high) {
    throw error_from_response(op, res.status, res.body, res.header("Retry-After"));
  }
  co_return res;
}

// --- sprites ------------------------------------------------------------------

asio::awaitable<proto::Sprite> Client::create_sprite(const proto::CreateSpriteRequest& spec,
                                                     CallOptions options) {
  const std::string op = "create sprite " + spec.name;
  auto timeout = options.timeout.value_or(config_.timeouts.create);
  auto r = make("POST", "/v1/sprites");
  r.body = proto::to_json(spec);
  r.content_type = "application/json";
  for (int attempt = 0;; ++attempt) {
    try {
      Response res = co_await request(r, false, timeout, op);
      if (res.status >= 200 && res.status < 300) {
        try {
          co_return proto::parse_sprite(res.body);
        } catch (const proto::ModelError& e) {
          throw Error(ErrorKind::protocol, op + ": " + e.what());
        }
      }
      throw error_from_response(op, res.status, res.body, res.header("Retry-After"));
    } catch (const Error& e) {
      // The request may or may not have reached the server: ask before
      // trying again, so a retry never makes a second sprite or a false
      // "already exists".
      if (e.kind() != ErrorKind::network || attempt + 1 >= config_.retry.max_attempts) throw;
    }
    try {
      co_return co_await get_sprite(spec.name);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::not_found) throw;
    }
    co_await backoff(attempt, std::nullopt, op);
  }
}

asio::awaitable<proto::SpritePage> Client::list_sprites(const std::string& prefix, int max_results,
                                                        const std::string& continuation,
                                                        CallOptions options) {
  std::string target = "/v1/sprites?max_results=" + std::to_string(max_results);
  if (!prefix.empty()) target += "&prefix=" + proto::percent_encode(prefix);
  if (!continuation.empty()) target += "&continuation_token=" + proto::percent_encode(continuation);
  const std::string op = "list sprites";
  Response res = co_await expect(make("GET", target), true,
                                 options.timeout.value_or(config_.timeouts.request), op, 200, 200);
  try {
    co_return proto::parse_sprite_page(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<std::vector<proto::Sprite>> Client::list_all_sprites(const std::string& prefix,
                                                                     CallOptions options) {
  std::vector<proto::Sprite> all;
  std::string token;
  for (;;) {
    auto page = co_await list_sprites(prefix, 50, token, options);
    for (auto& s : page.sprites) all.push_back(std::move(s));
    // As Go: stop when there is no more, or no token to ask for it with.
    if (!page.has_more || page.next_continuation_token.empty()) co_return all;
    if (page.next_continuation_token == token) {
      throw Error(ErrorKind::protocol, "list sprites: the server repeated its continuation token");
    }
    token = page.next_continuation_token;
  }
}

asio::awaitable<proto::Sprite> Client::get_sprite(const std::string& name, CallOptions options) {
  const std::string op = "get sprite " + name;
  Response res = co_await expect(make("GET", sprite_path(name)), true,
                                 options.timeout.value_or(config_.timeouts.request), op, 200, 200);
  try {
    co_return proto::parse_sprite(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<proto::Sprite> Client::update_sprite(const std::string& name,
                                                     const proto::UpdateSpriteRequest& update,
                                                     CallOptions options) {
  const std::string op = "update sprite " + name;
  auto r = make("PUT", sprite_path(name));
  r.body = proto::to_json(update);
  r.content_type = "application/json";
  // PUT of the same settings is idempotent.
  Response res = co_await expect(std::move(r), true,
                                 options.timeout.value_or(config_.timeouts.request), op, 200, 299);
  try {
    co_return proto::parse_sprite(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<void> Client::delete_sprite(const std::string& name, CallOptions options) {
  const std::string op = "delete sprite " + name;
  auto timeout = options.timeout.value_or(config_.timeouts.request);
  // DELETE is idempotent; a retry that finds it gone already succeeded.
  Response res = co_await request(make("DELETE", sprite_path(name)), true, timeout, op);
  if (res.status >= 200 && res.status < 300) co_return;
  throw error_from_response(op, res.status, res.body, res.header("Retry-After"));
}

asio::awaitable<void> Client::upgrade_sprite(const std::string& name, CallOptions options) {
  co_await expect(make("POST", sprite_path(name) + "/upgrade"), false,
                  options.timeout.value_or(config_.timeouts.lifecycle), "upgrade sprite " + name,
                  200, 299);
}

asio::awaitable<std::string> Client::restart_sprite(const std::string& name, CallOptions options) {
  Response res = co_await expect(make("POST", sprite_path(name) + "/restart"), false,
                                 options.timeout.value_or(config_.timeouts.lifecycle),
                                 "restart sprite " + name, 200, 299);
  co_return res.body;
}

asio::awaitable<std::string> Client::check_sprite(const std::string& name, CallOptions options) {
  Response res = co_await expect(make("GET", sprite_path(name) + "/check"), true,
                                 options.timeout.value_or(config_.timeouts.lifecycle),
                                 "check sprite " + name, 200, 200);
  co_return res.body;
}

asio::awaitable<Response> Client::call(const std::string& method, const std::string& target,
                                       const std::string& json_body, CallOptions options) {
  auto r = make(method, target);
  if (!json_body.empty()) {
    r.body = json_body;
    r.content_type = "application/json";
  }
  co_return co_await request(std::move(r), false,
                             options.timeout.value_or(config_.timeouts.request),
                             method + " " + target);
}

// --- sessions -------------------------------------------------------------------

asio::awaitable<std::vector<proto::SessionEntry>> Client::list_sessions(const std::string& name,
                                                                        CallOptions options) {
  const std::string op = "list sessions of " + name;
  Response res = co_await expect(make("GET", sprite_path(name) + "/exec"), true,
                                 options.timeout.value_or(config_.timeouts.request), op, 200, 200);
  try {
    co_return proto::parse_sessions(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<std::unique_ptr<EventStream>> Client::kill_session(
    const std::string& name, const std::string& session_id, const std::string& signal,
    std::optional<std::chrono::nanoseconds> timeout, CallOptions options) {
  const std::string op = "kill session " + session_id + " of " + name;
  std::string target = sprite_path(name) + "/exec/" + proto::percent_encode(session_id) +
                       "/kill?signal=" + proto::percent_encode(signal);
  if (timeout) target += "&timeout=" + proto::format_go_duration(*timeout);
  auto start = Clock::now();
  auto body = co_await transport_->open_stream(make("POST", target),
                                               options.timeout.value_or(config_.timeouts.request));
  trace_answer("POST", target, body->status, start);
  if (body->status == 410) co_return std::make_unique<EventStream>(nullptr, op);
  if (body->status != 200) {
    std::string text = co_await body->read_all();
    throw error_from_response(op, body->status, text, "");
  }
  co_return std::make_unique<EventStream>(std::move(body), op);
}

asio::awaitable<std::unique_ptr<BodyStream>> Client::open_body(Request request, bool idempotent,
                                                               Millis timeout,
                                                               const std::string& op) {
  const int attempts = idempotent ? std::max(1, config_.retry.max_attempts) : 1;
  for (int attempt = 0;; ++attempt) {
    const bool more = attempt + 1 < attempts;
    auto start = Clock::now();
    std::unique_ptr<BodyStream> body;
    try {
      body = co_await transport_->open_stream(request, timeout);
    } catch (const Error& e) {
      trace(request.method + " " + request.target + " failed: " + e.what());
      if (e.kind() != ErrorKind::network || !more) throw;
    }
    std::optional<std::chrono::seconds> retry_after;
    if (body) {
      trace_answer(request.method, request.target, body->status, start);
      if (body->status >= 200 && body->status < 300) co_return body;
      std::string text = co_await body->read_all();
      const std::string retry_header = header_value(body->headers, "retry-after");
      retry_after = error_from_response(op, body->status, text, retry_header).retry_after();
      if (!retryable_status(body->status) || !more ||
          (retry_after && *retry_after > config_.retry.max_retry_after)) {
        throw error_from_response(op, body->status, text, retry_header);
      }
    }
    co_await backoff(attempt, retry_after, op);
  }
}

asio::awaitable<std::unique_ptr<EventStream>> Client::open_events(const std::string& method,
                                                                  const std::string& target,
                                                                  std::string body, Millis timeout,
                                                                  std::string op, bool idempotent,
                                                                  bool error_fails) {
  auto r = make(method, target);
  r.body = std::move(body);
  if (!r.body.empty()) r.content_type = "application/json";
  auto stream = co_await open_body(std::move(r), idempotent, timeout, op);
  co_return std::make_unique<EventStream>(std::move(stream), std::move(op), error_fails);
}

asio::awaitable<std::unique_ptr<EventStream>> Client::create_checkpoint(const std::string& name,
                                                                        const std::string& comment,
                                                                        CallOptions options) {
  // Never retried: a second POST would make a second checkpoint.
  boost::json::object body;
  if (!comment.empty()) body["comment"] = comment;
  co_return co_await open_events(
      "POST", sprite_path(name) + "/checkpoint", boost::json::serialize(body),
      options.timeout.value_or(config_.timeouts.checkpoint), "checkpoint " + name);
}

asio::awaitable<std::unique_ptr<EventStream>> Client::restore_checkpoint(const std::string& name,
                                                                         const std::string& id,
                                                                         CallOptions options) {
  co_return co_await open_events(
      "POST", sprite_path(name) + "/checkpoints/" + proto::percent_encode(id) + "/restore", {},
      options.timeout.value_or(config_.timeouts.checkpoint), "restore " + name + " to " + id);
}

asio::awaitable<std::string> Client::checkpoint(const std::string& name, const std::string& comment,
                                                CallOptions options) {
  auto events = co_await create_checkpoint(name, comment, options);
  std::string id;
  while (auto event = co_await events->next()) {
    if (event->type == "complete") id = proto::checkpoint_id_in(event->message);
  }
  if (id.empty()) {
    throw Error(ErrorKind::protocol,
                "checkpoint " + name + ": the stream ended without \"Checkpoint <id> created\"");
  }
  co_return id;
}

asio::awaitable<void> Client::restore(const std::string& name, const std::string& id,
                                      CallOptions options) {
  auto events = co_await restore_checkpoint(name, id, options);
  bool complete = false;
  while (auto event = co_await events->next()) complete = complete || event->type == "complete";
  if (!complete) {
    throw Error(ErrorKind::protocol, "restore " + name + " to " + id +
                                         ": the stream ended before it said complete; check "
                                         "the sprite's state before going on");
  }
}

asio::awaitable<std::vector<proto::Checkpoint>> Client::list_checkpoints(const std::string& name,
                                                                         bool include_auto,
                                                                         CallOptions options) {
  const std::string op = "list checkpoints of " + name;
  std::string target = sprite_path(name) + "/checkpoints";
  if (include_auto) target += "?includeAuto=true";
  Response res = co_await expect(make("GET", target), true,
                                 options.timeout.value_or(config_.timeouts.request), op, 200, 200);
  try {
    co_return proto::parse_checkpoints(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<proto::Checkpoint> Client::get_checkpoint(const std::string& name,
                                                          const std::string& id,
                                                          CallOptions options) {
  const std::string op = "get checkpoint " + id + " of " + name;
  Response res =
      co_await expect(make("GET", sprite_path(name) + "/checkpoints/" + proto::percent_encode(id)),
                      true, options.timeout.value_or(config_.timeouts.request), op, 200, 200);
  try {
    co_return proto::parse_checkpoint(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<void> Client::delete_checkpoint(const std::string& name, const std::string& id,
                                                CallOptions options) {
  const std::string op = "delete checkpoint " + id + " of " + name;
  co_await expect(make("DELETE", sprite_path(name) + "/checkpoints/" + proto::percent_encode(id)),
                  false, options.timeout.value_or(config_.timeouts.request), op, 200, 299);
}

// --- filesystem -----------------------------------------------------------------

std::string Client::fs_target(const std::string& name, const std::string& fs_op,
                              const std::string& path, const FsOptions& options) const {
  return sprite_path(name) + "/fs/" + fs_op + "?path=" + proto::percent_encode(path) +
         "&workingDir=" + proto::percent_encode(dir_of(options));
}

asio::awaitable<std::string> Client::read_file(const std::string& name, const std::string& path,
                                               FsOptions options) {
  const std::string op = "read " + path + " on " + name;
  auto r = make("GET", fs_target(name, "read", path, options));
  const Millis timeout = options.timeout.value_or(config_.timeouts.files);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 206);
  co_return std::move(res.body);
}

asio::awaitable<std::unique_ptr<FileReader>> Client::open_file(const std::string& name,
                                                               const std::string& path,
                                                               FsOptions options) {
  std::string op = "read " + path + " on " + name;
  auto r = make("GET", fs_target(name, "read", path, options));
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  auto body = co_await open_body(std::move(r), true, timeout, op);
  co_return std::make_unique<FileReader>(std::move(body), std::move(op));
}

asio::awaitable<proto::FsWritten> Client::write_file(const std::string& name,
                                                     const std::string& path, std::string data,
                                                     std::optional<unsigned> mode,
                                                     bool mkdir_parents, FsOptions options) {
  const std::string op = "write " + path + " on " + name;
  std::string target = fs_target(name, "write", path, options);
  target += mkdir_parents ? "&mkdirParents=true" : "&mkdirParents=false";
  if (mode) target += "&mode=" + proto::format_octal_mode(*mode);
  auto r = make("PUT", target);
  r.body = std::move(data);
  r.content_type = "application/octet-stream";
  // The same bytes written again give the same file: idempotent.
  const Millis timeout = options.timeout.value_or(config_.timeouts.files);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 201);
  try {
    co_return proto::parse_fs_written(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<proto::FsListing> Client::list_fs(const std::string& name, const std::string& path,
                                                  bool recursive, const std::string& pattern,
                                                  const FsOptions& options, const std::string& op) {
  std::string target = fs_target(name, "list", path, options);
  if (recursive) target += "&recursive=true";
  if (!pattern.empty()) target += "&pattern=" + proto::percent_encode(pattern);
  auto r = make("GET", target);
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 200);
  try {
    co_return proto::parse_fs_listing(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<std::vector<proto::FsEntry>> Client::list_dir(const std::string& name,
                                                              const std::string& path,
                                                              bool recursive, FsOptions options) {
  const std::string op = "list " + path + " on " + name;
  const std::string no_pattern;
  auto listing = co_await list_fs(name, path, recursive, no_pattern, options, op);
  co_return std::move(listing.entries);
}

asio::awaitable<proto::FsEntry> Client::stat(const std::string& name, const std::string& path,
                                             FsOptions options) {
  const std::string op = "stat " + path + " on " + name;
  const std::string target = absolute_fs_path(path, options.working_dir);
  if (target == "/") {
    proto::FsEntry root;
    root.name = "/";
    root.path = "/";
    root.type = "directory";
    root.is_dir = true;
    root.mode = 0755;
    co_return root;
  }
  // The entry as its parent lists it, so a directory is itself (never its
  // first child, the SDKs' quirk) and an empty one exists. The pattern
  // keeps the answer to that entry where the server honours it.
  const auto slash = target.find_last_of('/');
  const std::string parent = slash == 0 ? "/" : target.substr(0, slash);
  const std::string base = target.substr(slash + 1);
  FsOptions in_parent = options;
  in_parent.working_dir = "/";
  const std::string pattern = literal_pattern(base);
  auto listing = co_await list_fs(name, parent, false, pattern, in_parent, op);
  for (auto& entry : listing.entries) {
    if (entry.name == base || entry.path == target) co_return std::move(entry);
  }
  throw Error(ErrorKind::not_found, op + ": no such file or directory: " + target + " (ENOENT)",
              404, "ENOENT");
}

asio::awaitable<std::vector<std::string>> Client::remove(const std::string& name,
                                                         const std::string& path, bool recursive,
                                                         FsOptions options) {
  const std::string op = "remove " + path + " on " + name;
  std::string target = fs_target(name, "delete", path, options);
  if (recursive) target += "&recursive=true";
  auto r = make("DELETE", target);
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 299);
  try {
    co_return proto::parse_fs_deleted(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<Response> Client::fs_post(const std::string& name, const std::string& fs_op,
                                          std::string body, bool idempotent,
                                          const FsOptions& options, const std::string& op) {
  auto r = make("POST", sprite_path(name) + "/fs/" + fs_op);
  r.body = std::move(body);
  r.content_type = "application/json";
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  co_return co_await expect(std::move(r), idempotent, timeout, op, 200, 299);
}

asio::awaitable<proto::FsMove> Client::rename(const std::string& name, const std::string& source,
                                              const std::string& dest, FsOptions options) {
  const std::string op = "rename " + source + " to " + dest + " on " + name;
  boost::json::object body;
  body["source"] = source;
  body["dest"] = dest;
  body["workingDir"] = dir_of(options);
  // Not idempotent: a second rename finds no source.
  std::string json = boost::json::serialize(body);
  const std::string fs_op = "rename";
  Response res = co_await fs_post(name, fs_op, std::move(json), false, options, op);
  try {
    co_return proto::parse_fs_renamed(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<proto::FsCopied> Client::copy(const std::string& name, const std::string& source,
                                              const std::string& dest, bool recursive,
                                              bool preserve_attrs, FsOptions options) {
  const std::string op = "copy " + source + " to " + dest + " on " + name;
  boost::json::object body;
  body["source"] = source;
  body["dest"] = dest;
  body["workingDir"] = dir_of(options);
  body["recursive"] = recursive;
  if (preserve_attrs) body["preserveAttrs"] = true;
  // Not idempotent: a second copy into a directory `dest` copies inside it.
  std::string json = boost::json::serialize(body);
  const std::string fs_op = "copy";
  Response res = co_await fs_post(name, fs_op, std::move(json), false, options, op);
  try {
    co_return proto::parse_fs_copied(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<std::vector<proto::FsChange>> Client::chmod(const std::string& name,
                                                            const std::string& path, unsigned mode,
                                                            bool recursive, FsOptions options) {
  const std::string op = "chmod " + path + " on " + name;
  boost::json::object body;
  body["path"] = path;
  body["workingDir"] = dir_of(options);
  body["mode"] = proto::format_octal_mode(mode);
  if (recursive) body["recursive"] = true;
  // Setting an absolute mode twice is setting it once: idempotent.
  std::string json = boost::json::serialize(body);
  const std::string fs_op = "chmod";
  Response res = co_await fs_post(name, fs_op, std::move(json), true, options, op);
  try {
    co_return proto::parse_fs_changes(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<std::vector<proto::FsChange>> Client::chown(const std::string& name,
                                                            const std::string& path,
                                                            const std::string& user,
                                                            const std::string& group,
                                                            bool recursive, FsOptions options) {
  const std::string op = "chown " + path + " on " + name;
  if (user.empty() && group.empty()) throw Error(ErrorKind::usage, op + ": no user or group given");
  boost::json::object body;
  body["path"] = path;
  body["workingDir"] = dir_of(options);
  if (!user.empty()) body["uid"] = owner_value(user);
  if (!group.empty()) body["gid"] = owner_value(group);
  if (recursive) body["recursive"] = true;
  std::string json = boost::json::serialize(body);
  const std::string fs_op = "chown";
  Response res = co_await fs_post(name, fs_op, std::move(json), true, options, op);
  try {
    co_return proto::parse_fs_changes(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

FileReader::FileReader(std::unique_ptr<BodyStream> body, std::string op)
    : body_(std::move(body)), op_(std::move(op)) {
  std::string length = header_value(body_->headers, "content-length");
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), n);
  if (!length.empty() && ec == std::errc() && end == length.data() + length.size()) size_ = n;
}

asio::awaitable<std::optional<std::string>> FileReader::next() {
  while (body_) {
    auto piece = co_await body_->next();
    if (!piece) {
      body_.reset();
      if (size_ && bytes_ != *size_) {
        throw Error(ErrorKind::network, op_ + ": the file ended after " + std::to_string(bytes_) +
                                            " of " + std::to_string(*size_) + " bytes");
      }
      break;
    }
    if (piece->empty()) continue;
    bytes_ += piece->size();
    co_return std::move(*piece);
  }
  co_return std::nullopt;
}

// --- services -------------------------------------------------------------------

namespace {

std::string service_path(const std::string& name, const std::string& svc) {
  return sprite_path(name) + "/services/" + proto::percent_encode(svc);
}

// "?KEY=5s" when set, else "".
std::string duration_query(std::string_view key, std::optional<std::chrono::nanoseconds> d) {
  if (!d) return {};
  return "?" + std::string(key) + "=" + proto::percent_encode(proto::format_go_duration(*d));
}

}  // namespace

asio::awaitable<std::vector<proto::Service>> Client::list_services(const std::string& name,
                                                                   CallOptions options) {
  const std::string op = "list services of " + name;
  auto r = make("GET", sprite_path(name) + "/services");
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 200);
  try {
    co_return proto::parse_services(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<proto::Service> Client::get_service(const std::string& name, const std::string& svc,
                                                    CallOptions options) {
  const std::string op = "get service " + svc + " of " + name;
  auto r = make("GET", service_path(name, svc));
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 200);
  try {
    co_return proto::parse_service(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<std::unique_ptr<EventStream>> Client::put_service(
    const std::string& name, const std::string& svc, const proto::ServiceDefinition& definition,
    std::optional<std::chrono::nanoseconds> duration, CallOptions options) {
  const std::string target = service_path(name, svc) + duration_query("duration", duration);
  std::string body = proto::to_json(definition);
  const Millis timeout = options.timeout.value_or(config_.timeouts.lifecycle);
  std::string op = "put service " + svc + " of " + name;
  // PUT of the same definition is idempotent: retried before the answer.
  const std::string method = "PUT";
  co_return co_await open_events(method, target, std::move(body), timeout, std::move(op), true,
                                 false);
}

asio::awaitable<std::unique_ptr<EventStream>> Client::start_service(
    const std::string& name, const std::string& svc,
    std::optional<std::chrono::nanoseconds> duration, CallOptions options) {
  const std::string target =
      service_path(name, svc) + "/start" + duration_query("duration", duration);
  const Millis timeout = options.timeout.value_or(config_.timeouts.lifecycle);
  std::string op = "start service " + svc + " of " + name;
  std::string no_body;
  const std::string method = "POST";
  co_return co_await open_events(method, target, std::move(no_body), timeout, std::move(op), false,
                                 false);
}

asio::awaitable<std::unique_ptr<EventStream>> Client::stop_service(
    const std::string& name, const std::string& svc,
    std::optional<std::chrono::nanoseconds> timeout, CallOptions options) {
  const std::string target = service_path(name, svc) + "/stop" + duration_query("timeout", timeout);
  const Millis call_timeout = options.timeout.value_or(config_.timeouts.lifecycle);
  std::string op = "stop service " + svc + " of " + name;
  std::string no_body;
  const std::string method = "POST";
  co_return co_await open_events(method, target, std::move(no_body), call_timeout, std::move(op),
                                 false, false);
}

asio::awaitable<std::unique_ptr<EventStream>> Client::restart_service(
    const std::string& name, const std::string& svc,
    std::optional<std::chrono::nanoseconds> duration, CallOptions options) {
  const std::string target =
      service_path(name, svc) + "/restart" + duration_query("duration", duration);
  const Millis timeout = options.timeout.value_or(config_.timeouts.lifecycle);
  std::string op = "restart service " + svc + " of " + name;
  std::string no_body;
  const std::string method = "POST";
  co_return co_await open_events(method, target, std::move(no_body), timeout, std::move(op), false,
                                 false);
}

asio::awaitable<std::unique_ptr<EventStream>> Client::service_logs(
    const std::string& name, const std::string& svc, std::optional<int> lines,
    std::optional<std::chrono::nanoseconds> duration, CallOptions options) {
  std::string target = service_path(name, svc) + "/logs" + duration_query("duration", duration);
  if (lines) target += (duration ? "&lines=" : "?lines=") + std::to_string(*lines);
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  std::string op = "logs of service " + svc + " of " + name;
  std::string no_body;
  const std::string method = "GET";
  co_return co_await open_events(method, target, std::move(no_body), timeout, std::move(op), true,
                                 false);
}

asio::awaitable<void> Client::delete_service(const std::string& name, const std::string& svc,
                                             CallOptions options) {
  auto r = make("DELETE", service_path(name, svc));
  // It is stopped first (TERM, KILL after 10 s): the lifecycle timeout.
  const Millis timeout = options.timeout.value_or(config_.timeouts.lifecycle);
  const std::string op = "delete service " + svc + " of " + name;
  co_await expect(std::move(r), true, timeout, op, 200, 299);
}

asio::awaitable<void> Client::signal_service(const std::string& name, const std::string& svc,
                                             const std::string& signal, CallOptions options) {
  boost::json::object body;
  body["name"] = svc;
  body["signal"] = signal;
  auto r = make("POST", sprite_path(name) + "/services/signal");
  r.body = boost::json::serialize(body);
  r.content_type = "application/json";
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  const std::string op = "signal service " + svc + " of " + name;
  // A second signal is a second delivery: sent once.
  co_await expect(std::move(r), false, timeout, op, 200, 299);
}

EventStream::EventStream(std::unique_ptr<BodyStream> body, std::string op, bool error_fails)
    : body_(std::move(body)), op_(std::move(op)), error_fails_(error_fails) {}

proto::ProgressEvent EventStream::checked(proto::ProgressEvent event) const {
  if (error_fails_ && event.type == "error") {
    throw Error(ErrorKind::api, op_ + ": " + (event.message.empty() ? "failed" : event.message));
  }
  return event;
}

asio::awaitable<std::optional<proto::ProgressEvent>> EventStream::next() {
  for (;;) {
    while (auto line = lines_.next_line()) {
      if (auto event = proto::parse_progress_event(*line)) co_return checked(std::move(*event));
    }
    if (ended_ || !body_) {
      if (auto last = lines_.finish()) {
        if (auto event = proto::parse_progress_event(*last)) co_return checked(std::move(*event));
      }
      co_return std::nullopt;
    }
    auto piece = co_await body_->next();
    if (!piece) {
      ended_ = true;
      continue;
    }
    if (!lines_.feed(*piece)) {
      throw Error(ErrorKind::protocol, op_ + ": an event line longer than 16 MiB");
    }
  }
}

}  // namespace spritescript::client
