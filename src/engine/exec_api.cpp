#include "engine/exec_api.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <charconv>
#include <csignal>

#include "engine/api.hpp"
#include "engine/fleet.hpp"
#include "engine/ports.hpp"
#include "proto/exec_frames.hpp"
#include "proto/signals.hpp"
#include "proto/values.hpp"

namespace json = boost::json;

namespace spritescript::engine {
namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
constexpr auto kKeepaliveEvery = std::chrono::seconds(15);  // JS gives up after 45 s of silence
constexpr std::size_t kHttpFrame = std::size_t{16} * 1024;  // HTTP exec frames stay small (spec §4)
constexpr auto kForever = std::chrono::hours(24 * 365);

std::optional<int> parse_id(const std::string& text) {
  int id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size() || id <= 0) return std::nullopt;
  return id;
}

bool query_flag(const proto::Target& target, std::string_view key, bool fallback) {
  auto v = target.param(key);
  if (!v) return fallback;
  return proto::parse_query_bool(*v).value_or(fallback);
}

unsigned query_uint(const proto::Target& target, std::string_view key, unsigned fallback) {
  auto v = target.param(key);
  unsigned n = 0;
  if (!v || std::from_chars(v->data(), v->data() + v->size(), n).ec != std::errc() || n == 0 ||
      n > 65535) {
    return fallback;
  }
  return n;
}

// Reads what the query asks to run (spec §3.2); an error response when it
// is not acceptable.
std::optional<HttpResponse> parse_exec(const proto::Target& target, ExecRequest& out) {
  SpawnSpec& spec = out.spec;
  spec.argv = target.params("cmd");
  spec.path = target.param("path").value_or("");
  spec.env = target.params("env");
  spec.dir = target.param("dir").value_or("");
  spec.tty = query_flag(target, "tty", false);
  spec.rows = query_uint(target, "rows", 24);
  spec.cols = query_uint(target, "cols", 80);
  for (const auto& e : spec.env) {
    if (e.find('=') == std::string::npos || e.front() == '=') {
      return api_error(400, "invalid_env", "env entries must be KEY=VALUE, got '" + e + "'");
    }
  }
  if (!spec.dir.empty() && spec.dir.front() != '/') {
    return api_error(400, "invalid_dir", "dir must be an absolute path, got '" + spec.dir + "'");
  }
  out.stdin_open = query_flag(target, "stdin", spec.tty);
  out.max_run_after_disconnect =
      spec.tty ? std::chrono::milliseconds(0) : std::chrono::milliseconds(10'000);
  if (auto text = target.param("max_run_after_disconnect")) {
    auto d = proto::parse_go_duration(*text);
    if (!d || d->count() < 0) {
      return api_error(400, "invalid_duration",
                       "max_run_after_disconnect must be a duration like 30s, got '" + *text + "'");
    }
    out.max_run_after_disconnect = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  return std::nullopt;
}

// (JSON built outside coroutines: GCC 12 cannot keep an initializer list
// in a coroutine frame.)
std::string exit_message(int code) {
  return json::serialize(json::object{{"type", "exit"}, {"exit_code", code}});
}

std::string kill_event(const char* type, const std::string& message) {
  return json::serialize(json::object{{"type", type}, {"message", message}}) + "\n";
}

std::string kill_signal_event(const std::string& signame, int pid) {
  return json::serialize(json::object{
             {"type", "signal"},
             {"message", "Signaling " + signame + " to process group " + std::to_string(pid)},
             {"signal", signame},
             {"pid", pid}}) +
         "\n";
}

std::string kill_complete_event(int code) {
  return json::serialize(json::object{{"type", "complete"}, {"exit_code", code}}) + "\n";
}

// Go signals over the socket only when told it may (spec §3.3).
Headers upgrade_headers() {
  return {{"X-Sprite-Capabilities", "signal"}};
}

json::object session_info_object(const Session& s, bool owner) {
  json::object o{{"type", "session_info"},
                 {"session_id", std::to_string(s.id())},  // a string: Go decodes one (§3.6.3)
                 {"command", s.command_line()},
                 {"created", s.created_unix()},
                 {"is_owner", owner},
                 {"tty", s.info().tty}};
  if (s.info().tty) {
    o["cols"] = s.info().cols;
    o["rows"] = s.info().rows;
  }
  return o;
}

std::string session_info(const Session& s, bool owner) {
  return json::serialize(session_info_object(s, owner));
}

class WebSocketSubscriber final : public Subscriber {
 public:
  // `greeting`: the session_info an attach sends from attached(), with the
  // replay's offset (a new command's is sent before the session starts).
  WebSocketSubscriber(std::shared_ptr<WebSocket> ws, bool tty,
                      std::optional<json::object> greeting = std::nullopt)
      : ws_(std::move(ws)),
        tty_(tty),
        greeting_(std::move(greeting)),
        last_write_(std::chrono::steady_clock::now()) {}

  // session_info first, before any output (JS drops binary frames until it);
  // replay_offset is spritescript's extension: with it a client that lost
  // its connection resumes exactly (docs/client.md).
  asio::awaitable<bool> attached(std::uint64_t replay_offset) override {
    if (!greeting_) co_return true;
    (*greeting_)["replay_offset"] = replay_offset;
    co_return co_await ws_->write(false, json::serialize(*greeting_));
  }

  // Frames of at most 64 KiB (spec §3.4): a stream id (none with a TTY)
  // and up to kMaxFrameData bytes of output.
  asio::awaitable<bool> output(std::uint8_t stream, std::string_view data) override {
    last_write_ = std::chrono::steady_clock::now();
    const char id = static_cast<char>(stream);
    const std::string_view prefix = tty_ ? std::string_view() : std::string_view(&id, 1);
    co_return co_await ws_->write_binary(prefix, data, kMaxFrameData);
  }

  asio::awaitable<void> exited(int code) override {
    if (tty_) {
      // TTY: the JSON exit, then a close whose code JS reads as the status.
      co_await ws_->write(false, exit_message(code));
      co_await ws_->close(code == 0 ? 1000
                                    : static_cast<std::uint16_t>(4000 + std::min(code, 255)));
    } else {
      const std::string frame =
          proto::encode_exit_frame(code);  // a named local: GCC 12 mishandled the temporary
      co_await ws_->write(true, frame);
      co_await ws_->close(1000);
    }
  }

  // Text keepalives while nothing else is sent (spec §3.9).
  asio::awaitable<void> keepalive() {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    while (ws_->is_open()) {
      timer.expires_after(kKeepaliveEvery);
      co_await timer.async_wait(kAsTuple);
      if (!ws_->is_open()) break;
      if (std::chrono::steady_clock::now() - last_write_ >= kKeepaliveEvery) {
        last_write_ = std::chrono::steady_clock::now();
        co_await ws_->write(false, R"({"type":"keepalive"})");
      }
    }
  }

 private:
  std::shared_ptr<WebSocket> ws_;
  bool tty_;
  std::optional<json::object> greeting_;
  std::chrono::steady_clock::time_point last_write_;
};

class HttpSubscriber final : public Subscriber {
 public:
  HttpSubscriber(HttpExchange& exchange, const asio::any_io_executor& ex)
      : exchange_(exchange), done_(ex) {
    done_.expires_after(kForever);
  }

  asio::awaitable<bool> output(std::uint8_t stream, std::string_view data) override {
    // One frame per chunk, each small (the client reads a chunk as a frame);
    // all of `data` in one write.
    const char id = static_cast<char>(stream);
    if (!co_await exchange_.write_chunks(std::string_view(&id, 1), data, kHttpFrame)) {
      done_.cancel();
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<void> exited(int code) override {
    const std::string frame =
        proto::encode_exit_frame(code);  // a named local: GCC 12 mishandled the temporary
    if (co_await exchange_.write_chunk(frame)) {
      co_await exchange_.finish_stream();
    }
    done_.cancel();
  }

  asio::awaitable<void> wait_done() { co_await done_.async_wait(kAsTuple); }

 private:
  HttpExchange& exchange_;
  asio::steady_timer done_;
};

// port_opened/port_closed for every port of the sprite (spec §3.6.2: "a
// process in the sprite started listening") while the client is connected
// and the process runs; none after its exit.
std::unique_ptr<PortFeed> port_feed(PortMonitor* ports, const std::string& name,
                                    const std::shared_ptr<WebSocket>& ws,
                                    const std::shared_ptr<Session>& session) {
  if (!ports) return nullptr;
  std::weak_ptr<Session> weak = session;
  return ports->feed(name, ws, false, [weak] {
    auto s = weak.lock();
    return s && !s->exit_code();
  });
}

HttpResponse sandbox_error(const std::string& why) {
  return api_error(503, "sprite_unavailable", "cannot run the sprite: " + why);
}

// (Coroutines started with co_spawn are plain functions taking their state
// as parameters: lambda captures are not safe across GCC 12's coroutines.)
asio::awaitable<void> keep_alive(std::shared_ptr<WebSocketSubscriber> subscriber) {
  co_await subscriber->keepalive();
}

asio::awaitable<void> feed_stdin(std::shared_ptr<Session> session, std::string body) {
  co_await session->write_stdin(body);
  session->close_stdin();
}

// Relays what the client sends to the session until the socket closes.
asio::awaitable<void> read_client(WebSocket& ws, Session& session, bool tty) {
  while (auto message = co_await ws.read()) {
    if (message->binary) {
      if (tty) {
        co_await session.write_stdin(message->data);
        continue;
      }
      if (message->data.empty()) continue;  // zero-length messages mean nothing (§3.4)
      auto id = static_cast<std::uint8_t>(message->data[0]);
      if (id == kStdin) {
        co_await session.write_stdin(std::string_view(message->data).substr(1));
      } else if (id == kStdinEof) {
        session.close_stdin();
      }
      continue;  // unknown ids are ignored
    }
    json::error_code ec;
    json::value v = json::parse(message->data, ec);
    if (ec || !v.is_object()) continue;  // garbage text: ignored, the session goes on
    const json::object& o = v.as_object();
    const json::value* type = o.if_contains("type");
    if (!type || !type->is_string()) continue;
    if (type->as_string() == "resize") {
      auto number = [&o](const char* key) -> unsigned {
        const json::value* n = o.if_contains(key);
        if (!n || !n->is_number()) return 0;
        auto value = n->to_number<double>();
        return value > 0 && value < 65536 ? static_cast<unsigned>(value) : 0;
      };
      unsigned rows = number("rows"), cols = number("cols");
      session.resize(rows ? rows : session.info().rows, cols ? cols : session.info().cols);
    } else if (type->as_string() == "signal") {
      const json::value* name = o.if_contains("signal");
      if (name && name->is_string()) {
        if (auto signo = proto::parse_signal(std::string(name->as_string()))) {
          session.signal(*signo);
        }
      }
    }
  }
}

}  // namespace

asio::awaitable<void> ExecApi::serve(HttpExchange& exchange, const proto::Target& target,
                                     const std::string& name) {
  const auto& seg = target.segments;
  const std::string& method = exchange.request().method;
  if (seg.size() == 4) {
    if (method == "HEAD") {  // the version probe (§5.3): Sprite-Version is on every response
      co_await exchange.respond({200, ""});
    } else if (method == "GET" && exchange.request().websocket) {
      if (auto id = target.param("id")) {
        co_await attach_websocket(exchange, name, *id);
      } else {
        co_await start_websocket(exchange, target, name);
      }
    } else if (method == "GET") {
      co_await exchange.respond(list(name));
    } else if (method == "POST") {
      co_await http_exec(exchange, target, name);
    } else {
      co_await exchange.respond(
          api_error(405, "method_not_allowed", method + " is not allowed on exec"));
    }
    co_return;
  }
  if (seg.size() == 5 && method == "GET") {
    if (!exchange.request().websocket) {
      co_await exchange.respond(
          api_error(400, "websocket_required", "attaching to a session needs a WebSocket upgrade"));
    } else {
      co_await attach_websocket(exchange, name, seg[4]);
    }
    co_return;
  }
  if (seg.size() == 6 && seg[5] == "kill" && method == "POST") {
    co_await kill(exchange, target, name, seg[4]);
    co_return;
  }
  co_await exchange.respond(api_error(404, "not_found", "no such exec endpoint"));
}

asio::awaitable<std::shared_ptr<Machine>> ExecApi::wake(HttpExchange& exchange,
                                                        const std::string& name) {
  auto [machine, failure] = co_await fleet_.try_wake(name);
  if (!machine) co_await exchange.respond(sandbox_error(failure));
  co_return machine;
}

asio::awaitable<std::shared_ptr<Session>> ExecApi::start_session(HttpExchange& exchange,
                                                                 const std::string& name,
                                                                 const ExecRequest& request) {
  auto machine = co_await wake(exchange, name);
  if (!machine) co_return nullptr;
  std::optional<Spawned> spawned;
  std::string failure;
  try {
    spawned = co_await machine->spawn(request.spec);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!spawned) {
    co_await exchange.respond(sandbox_error(failure));
    co_return nullptr;
  }
  Session::Info info;
  info.argv = request.spec.argv;
  if (info.argv.empty())
    info.argv.push_back(request.spec.path.empty() ? "bash" : request.spec.path);
  info.workdir = request.spec.dir.empty() ? "/home/sprite" : request.spec.dir;
  info.tty = request.spec.tty;
  info.rows = request.spec.rows;
  info.cols = request.spec.cols;
  info.max_run_after_disconnect = request.max_run_after_disconnect;
  auto session = std::make_shared<Session>(co_await asio::this_coro::executor, machine,
                                           std::move(*spawned), std::move(info));
  session->watch_exit();
  fleet_.add_session(name, session);
  co_return session;
}

asio::awaitable<void> ExecApi::start_websocket(HttpExchange& exchange, const proto::Target& target,
                                               const std::string& name) {
  ExecRequest request;
  if (auto bad = parse_exec(target, request)) {
    co_await exchange.respond(std::move(*bad));
    co_return;
  }
  auto hold = fleet_.hold(name);
  auto session = co_await start_session(exchange, name, request);
  if (!session) co_return;
  if (!request.stdin_open && !request.spec.tty) session->close_stdin();

  auto ws = co_await exchange.accept_websocket(upgrade_headers());
  if (!ws) {
    session->start();  // the client left during the upgrade: it runs detached
    co_return;
  }
  auto subscriber = std::make_shared<WebSocketSubscriber>(ws, request.spec.tty);
  std::unique_ptr<PortFeed> ports;
  if (co_await ws->write(false, session_info(*session, true))) {
    ports = port_feed(ports_, name, ws, session);  // after session_info, which comes first
    co_await session->attach(subscriber);
    asio::co_spawn(co_await asio::this_coro::executor, keep_alive(subscriber), asio::detached);
    co_await read_client(*ws, *session, request.spec.tty);
  } else {
    session->start();
  }
  session->detach(subscriber);
}

asio::awaitable<void> ExecApi::attach_websocket(HttpExchange& exchange, const std::string& name,
                                                const std::string& id_text) {
  auto id = parse_id(id_text);
  auto session = id ? fleet_.session(name, *id) : nullptr;
  if (!session) {
    co_await exchange.respond(api_error(
        404, "session_not_found", "no running exec session '" + id_text + "' on '" + name + "'"));
    co_return;
  }
  auto hold = fleet_.hold(name);
  if (!co_await wake(exchange, name)) co_return;  // a warm sprite thaws
  auto ws = co_await exchange.accept_websocket(upgrade_headers());
  if (!ws) co_return;
  const bool tty = session->info().tty;
  auto subscriber =
      std::make_shared<WebSocketSubscriber>(ws, tty, session_info_object(*session, false));
  std::unique_ptr<PortFeed> ports;
  if (!co_await session->attach(subscriber)) {
    // It ended between the lookup and now.
    if (co_await ws->write(false, session_info(*session, false))) co_await ws->close(1000);
  } else {
    ports = port_feed(ports_, name, ws, session);
    asio::co_spawn(co_await asio::this_coro::executor, keep_alive(subscriber), asio::detached);
  }
  co_await read_client(*ws, *session, tty);
  session->detach(subscriber);
}

asio::awaitable<void> ExecApi::http_exec(HttpExchange& exchange, const proto::Target& target,
                                         const std::string& name) {
  ExecRequest request;
  if (auto bad = parse_exec(target, request)) {
    co_await exchange.respond(std::move(*bad));
    co_return;
  }
  if (request.spec.tty) {
    co_await exchange.respond(
        api_error(400, "tty_not_supported", "HTTP exec is non-TTY only; use the WebSocket exec"));
    co_return;
  }
  auto hold = fleet_.hold(name);
  auto session = co_await start_session(exchange, name, request);
  if (!session) co_return;
  // The body is the whole stdin; written alongside the output so a large
  // one cannot deadlock against a full stdout pipe.
  std::string body = exchange.request().body;
  if (body.empty()) {
    session->close_stdin();
  } else {
    asio::co_spawn(co_await asio::this_coro::executor, feed_stdin(session, std::move(body)),
                   asio::detached);
  }
  if (!co_await exchange.start_stream(200, "application/octet-stream")) {
    session->start();
    co_return;
  }
  auto subscriber = std::make_shared<HttpSubscriber>(exchange, co_await asio::this_coro::executor);
  if (co_await session->attach(subscriber)) co_await subscriber->wait_done();
  session->detach(subscriber);
}

HttpResponse ExecApi::list(const std::string& name) const {
  json::array sessions;
  for (const auto& s : fleet_.sessions(name)) {
    sessions.push_back(json::object{{"id", std::to_string(s->id())},  // a string (§5.1)
                                    {"command", s->command_line()},
                                    {"workdir", s->info().workdir},
                                    {"created", s->created_rfc3339()},
                                    {"bytes_per_second", s->bytes_per_second()},
                                    {"is_active", s->attached()},
                                    {"last_activity", s->last_activity_rfc3339()},
                                    {"tty", s->info().tty}});
  }
  json::object body{{"count", sessions.size()}};
  body["sessions"] = std::move(sessions);
  return {200, json::serialize(body)};
}

asio::awaitable<void> ExecApi::kill(HttpExchange& exchange, const proto::Target& target,
                                    const std::string& name, const std::string& id_text) {
  auto id = parse_id(id_text);
  auto session = id ? fleet_.session(name, *id) : nullptr;
  if (!session) {
    if (id && fleet_.recently_finished(name, *id)) {
      co_await exchange.respond(api_error(410, "session_exited", "the session already exited"));
    } else {
      co_await exchange.respond(
          api_error(404, "session_not_found", "no running exec session '" + id_text + "'"));
    }
    co_return;
  }
  // Query (Go, JS) or JSON body (Py): signal name, timeout.
  std::string signal_text = target.param("signal").value_or("");
  std::chrono::milliseconds timeout{10'000};
  if (auto t = target.param("timeout")) {
    auto d = proto::parse_go_duration(*t);
    if (!d || d->count() < 0) {
      co_await exchange.respond(api_error(400, "invalid_duration",
                                          "timeout must be a duration like 10s, got '" + *t + "'"));
      co_return;
    }
    timeout = std::chrono::duration_cast<std::chrono::milliseconds>(*d);
  }
  if (!exchange.request().body.empty()) {
    json::error_code ec;
    json::value v = json::parse(exchange.request().body, ec);
    if (!ec && v.is_object()) {
      const auto& o = v.as_object();
      if (const auto* s = o.if_contains("signal"); s && s->is_string() && signal_text.empty()) {
        signal_text = std::string(s->as_string());
      }
      if (const auto* t = o.if_contains("timeout"); t && t->is_number()) {
        timeout = std::chrono::milliseconds(static_cast<long>(t->to_number<double>() * 1000));
      }
    }
  }
  if (signal_text.empty()) signal_text = "SIGTERM";
  auto signo = proto::parse_signal(signal_text);
  if (!signo) {
    co_await exchange.respond(
        api_error(400, "invalid_signal", "unknown signal '" + signal_text + "'"));
    co_return;
  }
  auto hold = fleet_.hold(name);
  if (!co_await wake(exchange, name)) co_return;  // a frozen process cannot act on a signal
  co_await exchange.start_stream(200, "application/x-ndjson");
  co_await exchange.write_chunk(kill_signal_event(proto::signal_name(*signo), *id));
  session->signal(*signo);
  if (timeout.count() > 0) {
    if (co_await session->wait_exit(timeout)) {
      co_await exchange.write_chunk(kill_event("exited", "Process exited"));
    } else {
      co_await exchange.write_chunk(kill_event(
          "timeout", "Timeout after " + proto::format_go_duration(timeout) + ", sending SIGKILL"));
      session->signal(SIGKILL);
      if (co_await session->wait_exit(std::chrono::seconds(5))) {
        co_await exchange.write_chunk(kill_event("killed", "Process killed"));
      } else {
        co_await exchange.write_chunk(
            kill_event("error", "Warning: process may not have terminated"));
      }
    }
  }
  co_await exchange.write_chunk(kill_complete_event(session->exit_code().value_or(0)));
  co_await exchange.finish_stream();
}

}  // namespace spritescript::engine
