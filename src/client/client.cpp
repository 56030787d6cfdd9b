#include "client/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include "proto/values.hpp"

#include <cstdio>
#include <random>
#include <regex>

namespace spritescript::client {

namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
using Clock = std::chrono::steady_clock;

}  // namespace

std::string sprite_path(const std::string& name) {
  return "/v1/sprites/" + proto::percent_encode(name);
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

asio::awaitable<std::unique_ptr<EventStream>> Client::open_events(const std::string& method,
                                                                  const std::string& target,
                                                                  std::string body, Millis timeout,
                                                                  std::string op) {
  auto r = make(method, target);
  r.body = std::move(body);
  if (!r.body.empty()) r.content_type = "application/json";
  auto start = Clock::now();
  auto stream = co_await transport_->open_stream(std::move(r), timeout);
  trace_answer(method, target, stream->status, start);
  if (stream->status != 200) {
    std::string text = co_await stream->read_all();
    throw error_from_response(op, stream->status, text, "");
  }
  co_return std::make_unique<EventStream>(std::move(stream), std::move(op), true);
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
