// The TCP proxy (spec §9) and port events (spec §6, §3.6.2) of the local
// engine, end to end: servers run inside sprites (python3, from the host's
// /usr), and the tests reach them through /v1/sprites/NAME/proxy and watch
// them come and go through /v1/sprites/NAME/ports/watch and exec sockets.
// Timeouts are hang guards only; nothing here asserts on timing.
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine.hpp"
#include "json_support.hpp"
#include "process.hpp"
#include "test_data.hpp"
#include "ws_client.hpp"

namespace {

using e2e::echo_server;
using e2e::random_bytes;

namespace json = boost::json;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using e2e::Engine;
using e2e::WebSocketClient;
using Message = WebSocketClient::Message;
using Clock = std::chrono::steady_clock;

constexpr auto kHangGuard = std::chrono::seconds(60);

using e2e::parse_object;
const auto str = e2e::string_field;
const auto num = e2e::int_field;

void create_sprite(Engine& engine, const std::string& name) {
  REQUIRE_THAT(engine.call("POST", "/v1/sprites", R"({"name":")" + name + R"("})"),
               StartsWith("201 "));
}

std::string exec_target(const std::string& sprite, const std::vector<std::string>& argv,
                        const std::string& extra = "stdin=false") {
  std::string target = "/v1/sprites/" + sprite + "/exec?";
  for (const auto& arg : argv) target += "cmd=" + e2e::url_encode(arg) + "&";
  target += "path=" + e2e::url_encode(argv.at(0));
  if (!extra.empty()) target += "&" + extra;
  return target;
}

// Runs a command to its end over HTTP exec; returns its exit code.
int run(Engine& engine, const std::string& sprite, const std::vector<std::string>& argv) {
  std::string target = exec_target(sprite, argv, "");
  auto reply = engine.request("POST", target);
  REQUIRE(reply.status == 200);
  REQUIRE_FALSE(reply.body.empty());
  const std::string& b = reply.body;
  // The last frame is 03 <code>.
  REQUIRE(b.size() >= 2);
  REQUIRE(b[b.size() - 2] == 3);
  return static_cast<unsigned char>(b.back());
}

// A process running in a sprite for as long as this object lives (its exec
// WebSocket stays open), ended with SIGTERM on request.
class Background {
 public:
  Background(Engine& engine, const std::string& sprite, const std::vector<std::string>& argv)
      : ws_(engine.websocket(exec_target(sprite, argv, "stdin=false&max_run_after_disconnect=0"))) {
    REQUIRE(ws_->connected());
    auto first = ws_->read();
    REQUIRE(first);
    REQUIRE_FALSE(first->binary);
    info_ = parse_object(first->data);
    REQUIRE(str(info_, "type") == "session_info");
  }
  ~Background() {
    try {
      stop();
    } catch (...) {
    }
  }
  WebSocketClient& ws() { return *ws_; }
  int pid() const { return std::stoi(str(info_, "session_id")); }
  // SIGTERM, then waits for the exit frame.
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    ws_->send_text(R"({"type":"signal","signal":"TERM"})");
    while (auto m = ws_->read()) {
      if (m->binary && !m->data.empty() && m->data[0] == 3) break;
    }
  }

 private:
  std::unique_ptr<WebSocketClient> ws_;
  json::object info_;
  bool stopped_ = false;
};

// Opens a tunnel; returns the server's reply to the init message.
json::object open_tunnel(WebSocketClient& ws, const std::string& init) {
  REQUIRE(ws.connected());
  ws.send_text(init);
  auto reply = ws.read();
  REQUIRE(reply);
  INFO("reply: " << reply->data);
  REQUIRE_FALSE(reply->binary);
  return parse_object(reply->data);
}

// Waits until `port` listens in the sprite (the proxy connects).
void wait_listening(Engine& engine, const std::string& sprite, int port) {
  const auto deadline = Clock::now() + kHangGuard;
  const std::string init = R"({"host":"localhost","port":)" + std::to_string(port) + "}";
  while (Clock::now() < deadline) {
    auto ws = engine.websocket("/v1/sprites/" + sprite + "/proxy");
    if (str(open_tunnel(*ws, init), "status") == "connected") {
      ws->close();
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  FAIL("port " << port << " never listened in " << sprite);
}

// Everything the target sends until the tunnel closes (binary messages joined).
std::string read_to_close(WebSocketClient& ws) {
  std::string all;
  while (auto m = ws.read()) {
    if (m->binary) all += m->data;
  }
  return all;
}

// One HTTP/1.0 GET through a new tunnel; the whole response.
std::string http_get(Engine& engine, const std::string& sprite, int port, const std::string& path,
                     std::optional<int>* close_code = nullptr) {
  auto ws = engine.websocket("/v1/sprites/" + sprite + "/proxy");
  json::object reply =
      open_tunnel(*ws, R"({"host":"localhost","port":)" + std::to_string(port) + "}");
  REQUIRE(str(reply, "status") == "connected");
  ws->send_binary("GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n");
  std::string response = read_to_close(*ws);
  if (close_code) *close_code = ws->close_code();
  return response;
}

// A refused init or target: {"status":"error","error":...}, then a close.
std::string expect_refusal(Engine& engine, const std::string& sprite, bool binary,
                           const std::string& init) {
  auto ws = engine.websocket("/v1/sprites/" + sprite + "/proxy");
  REQUIRE(ws->connected());
  ws->send(binary, init);
  auto reply = ws->read();
  REQUIRE(reply);
  INFO("reply: " << reply->data);
  CHECK_FALSE(reply->binary);
  json::object o = parse_object(reply->data);
  CHECK(str(o, "status") == "error");
  CHECK_FALSE(str(o, "error").empty());
  CHECK_FALSE(ws->read());  // then the close
  CHECK(ws->close_code() == 1011);
  return str(o, "error");
}

// The next text message of a port watch or exec socket whose type is `type`
// (others skipped).
json::object next_of_type(WebSocketClient& ws, const std::string& type, int port = 0) {
  const auto deadline = Clock::now() + kHangGuard;
  while (Clock::now() < deadline) {
    auto m = ws.read();
    REQUIRE(m);
    if (m->binary) continue;
    json::object o = parse_object(m->data);
    if (str(o, "type") == type && (port == 0 || num(o, "port") == port)) return o;
  }
  FAIL("no " << type << " message");
  return {};
}

}  // namespace

TEST_CASE("Proxy: an HTTP GET through the tunnel reaches python3 http.server in the sprite",
          "[proxy]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "web");
  REQUIRE(run(engine, "web",
              {"sh", "-c", "mkdir -p /tmp/www && echo hello-from-web > /tmp/www/hello.txt"}) == 0);
  Background server(
      engine, "web",
      {"python3", "-m", "http.server", "8080", "--bind", "127.0.0.1", "--directory", "/tmp/www"});
  wait_listening(engine, "web", 8080);

  // The reply names the target as the client did; then raw bytes both ways.
  {
    auto ws = engine.websocket("/v1/sprites/web/proxy");
    json::object reply = open_tunnel(*ws, R"({"host":"localhost","port":8080})");
    CHECK(str(reply, "status") == "connected");
    CHECK(str(reply, "target") == "localhost:8080");
    ws->send_binary("GET /hello.txt HTTP/1.0\r\n\r\n");
    std::string response = read_to_close(*ws);
    CHECK_THAT(response, StartsWith("HTTP/1.0 200"));
    CHECK_THAT(response, Contains("\r\n\r\nhello-from-web\n"));
    CHECK(ws->close_code() == 1000);  // the target closed: 1000 (spec §9)
  }
  // Other names of the sprite's loopback.
  for (const char* init : {R"({"port":8080})", R"({"host":"127.0.0.1","port":8080})",
                           R"({"host":"0.0.0.0","port":8080})", R"({"host":"web","port":8080})"}) {
    INFO(init);
    auto ws = engine.websocket("/v1/sprites/web/proxy");
    CHECK(str(open_tunnel(*ws, init), "status") == "connected");
    ws->close();
  }
  // A plain GET is not a tunnel.
  auto plain = engine.request("GET", "/v1/sprites/web/proxy");
  CHECK(plain.status == 400);
  CHECK_THAT(plain.body, Contains("WebSocket"));
}

TEST_CASE("Proxy: 10 MiB through an echo server come back byte for byte", "[proxy]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "echo");
  Background server(engine, "echo", {"python3", "-c", echo_server(9000)});
  wait_listening(engine, "echo", 9000);

  auto ws = engine.websocket("/v1/sprites/echo/proxy");
  REQUIRE(str(open_tunnel(*ws, R"({"host":"127.0.0.1","port":9000})"), "status") == "connected");
  const std::string data = random_bytes(10 << 20, 8);
  constexpr std::size_t kPiece = 100'000;  // not a power of two: chunk boundaries move
  for (std::size_t at = 0; at < data.size(); at += kPiece) {
    ws->queue(true, data.substr(at, kPiece));
  }
  std::string back;
  while (back.size() < data.size()) {
    auto m = ws->read();
    REQUIRE(m);
    if (m->binary) back += m->data;
  }
  ws->flush();
  CHECK(back.size() == data.size());
  CHECK(back == data);
  // The client ends the tunnel: the target sees end-of-file, the engine goes on.
  ws->close();
  CHECK(ws->ended());
  // A client that vanishes mid-transfer (no close frame) ends its tunnel too.
  {
    auto gone = engine.websocket("/v1/sprites/echo/proxy");
    REQUIRE(str(open_tunnel(*gone, R"({"port":9000})"), "status") == "connected");
    gone->queue(true, data.substr(0, 1 << 20));
    gone->flush();
    gone->drop();
  }
  auto again = engine.websocket("/v1/sprites/echo/proxy");
  REQUIRE(str(open_tunnel(*again, R"({"port":9000})"), "status") == "connected");
  again->send_binary("ping");
  auto pong = again->read();
  REQUIRE(pong);
  CHECK(pong->data == "ping");
}

TEST_CASE("Proxy: two sprites each serve port 8080 and each tunnel reaches its own", "[proxy]") {
  e2e::TempDir state;
  Engine engine(state);
  std::vector<std::unique_ptr<Background>> servers;
  for (std::string name : {"left", "right"}) {
    create_sprite(engine, name);
    REQUIRE(run(engine, name,
                {"sh", "-c", "mkdir -p /tmp/www && echo i-am-" + name + " > /tmp/www/who"}) == 0);
    servers.push_back(std::make_unique<Background>(
        engine, name,
        std::vector<std::string>{"python3", "-m", "http.server", "8080", "--bind", "127.0.0.1",
                                 "--directory", "/tmp/www"}));
  }
  wait_listening(engine, "left", 8080);
  wait_listening(engine, "right", 8080);
  for (int round = 0; round < 2; ++round) {
    CHECK_THAT(http_get(engine, "left", 8080, "/who"), Contains("i-am-left"));
    CHECK_THAT(http_get(engine, "right", 8080, "/who"), Contains("i-am-right"));
  }
  // Nothing listens on the host's 8080 through this: a third sprite has no server.
  create_sprite(engine, "empty");
  std::string why = expect_refusal(engine, "empty", false, R"({"host":"localhost","port":8080})");
  CHECK_THAT(why, Contains("connection refused"));
}

TEST_CASE("Proxy: a closed port and bad init messages get one clear error and the engine goes on",
          "[proxy][errors]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "bad");

  SECTION("closed port") {
    std::string why = expect_refusal(engine, "bad", false, R"({"host":"127.0.0.1","port":9})");
    CHECK(why == "dial tcp 127.0.0.1:9: connect: connection refused");
  }
  SECTION("bad init messages") {
    CHECK_THAT(expect_refusal(engine, "bad", false, R"({"host":"localhost","port":0})"),
               Contains("invalid port"));
    CHECK_THAT(expect_refusal(engine, "bad", false, R"({"host":"localhost","port":70000})"),
               Contains("invalid port"));
    CHECK_THAT(expect_refusal(engine, "bad", false, R"({"host":"localhost","port":"80"})"),
               Contains("invalid port"));
    CHECK_THAT(expect_refusal(engine, "bad", false, R"({"host":"localhost"})"),
               Contains("invalid port"));
    CHECK_THAT(expect_refusal(engine, "bad", false, "not json"), Contains("JSON"));
    CHECK_THAT(expect_refusal(engine, "bad", true, R"({"port":80})"), Contains("text init"));
    CHECK_THAT(expect_refusal(engine, "bad", false, R"({"host":"example.com","port":80})"),
               Contains("own addresses"));
    CHECK_THAT(expect_refusal(engine, "bad", false, R"({"host":"10.1.2.3","port":80})"),
               Contains("own addresses"));
  }
  SECTION("unknown sprite: 404 before any upgrade") {
    auto ws = engine.websocket("/v1/sprites/nosuch/proxy");
    CHECK_FALSE(ws->connected());
    CHECK(ws->handshake().status == 404);
  }
  // Still serving: a listing, and a tunnel that works.
  CHECK_THAT(engine.call("GET", "/v1/sprites"), StartsWith("200 "));
  Background server(engine, "bad", {"python3", "-c", echo_server(9001)});
  wait_listening(engine, "bad", 9001);
  auto ws = engine.websocket("/v1/sprites/bad/proxy");
  REQUIRE(str(open_tunnel(*ws, R"({"port":9001})"), "status") == "connected");
  ws->send_binary("still here");
  auto m = ws->read();
  REQUIRE(m);
  CHECK(m->data == "still here");
}

TEST_CASE("Port watch: port_list first then port_opened and port_closed as a server comes and goes",
          "[ports]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "watched");
  REQUIRE(run(engine, "watched", {"true"}) == 0);  // awake

  auto watch = engine.websocket("/v1/sprites/watched/ports/watch");
  REQUIRE(watch->connected());
  auto first = watch->read();
  REQUIRE(first);
  REQUIRE_FALSE(first->binary);
  json::object list = parse_object(first->data);
  CHECK(str(list, "type") == "port_list");
  REQUIRE(list.if_contains("ports"));
  REQUIRE(list.at("ports").is_array());
  for (const auto& p : list.at("ports").as_array()) CHECK(num(p.as_object(), "port") != 8081);

  int pid = 0;
  {
    Background server(engine, "watched", {"python3", "-c", echo_server(8081)});
    pid = server.pid();
    json::object opened = next_of_type(*watch, "port_opened", 8081);
    INFO(json::serialize(opened));
    CHECK(str(opened, "address") == "127.0.0.1");
    CHECK(num(opened, "pid") == pid);  // python3 was exec'd directly: the session's pid

    // A second watcher sees the server in its snapshot.
    auto second = engine.websocket("/v1/sprites/watched/ports/watch");
    auto snapshot = second->read();
    REQUIRE(snapshot);
    json::object l2 = parse_object(snapshot->data);
    CHECK(str(l2, "type") == "port_list");
    bool listed = false;
    for (const auto& p : l2.at("ports").as_array()) {
      if (num(p.as_object(), "port") == 8081) {
        listed = true;
        CHECK(str(p.as_object(), "address") == "127.0.0.1");
        CHECK(num(p.as_object(), "pid") == pid);
      }
    }
    CHECK(listed);
    second->close();
    server.stop();
  }
  json::object closed = next_of_type(*watch, "port_closed", 8081);
  CHECK(str(closed, "address") == "127.0.0.1");
  CHECK(num(closed, "pid") == pid);

  // A listener on every IPv6 address shows its bind address as "::".
  {
    Background server(engine, "watched", {"python3", "-m", "http.server", "8082", "--bind", "::"});
    json::object opened = next_of_type(*watch, "port_opened", 8082);
    CHECK(str(opened, "address") == "::");
  }
  next_of_type(*watch, "port_closed", 8082);

  // Not a WebSocket: 400; an unknown ports endpoint: 404.
  CHECK(engine.request("GET", "/v1/sprites/watched/ports/watch").status == 400);
  CHECK(engine.request("GET", "/v1/sprites/watched/ports/other").status == 404);
  watch->close();
}

TEST_CASE("Exec sockets get port_opened and port_closed for ports of the sprite", "[ports][exec]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "execports");

  // The session that opens the port hears of it, with its own pid.
  auto ws = engine.websocket(
      exec_target("execports", {"python3", "-c", echo_server(8083) + "\n"}, "stdin=false"));
  REQUIRE(ws->connected());
  auto first = ws->read();
  REQUIRE(first);
  json::object info = parse_object(first->data);
  REQUIRE(str(info, "type") == "session_info");
  json::object opened = next_of_type(*ws, "port_opened", 8083);
  CHECK(str(opened, "address") == "127.0.0.1");
  CHECK(std::to_string(num(opened, "pid")) == str(info, "session_id"));

  // Another exec socket on the same sprite hears when it closes.
  auto other = engine.websocket(exec_target("execports", {"sleep", "30"}, "stdin=false"));
  REQUIRE(other->connected());
  REQUIRE(other->read());  // session_info
  ws->send_text(R"({"type":"signal","signal":"TERM"})");
  json::object closed = next_of_type(*other, "port_closed", 8083);
  CHECK(num(closed, "port") == 8083);
  other->send_text(R"({"type":"signal","signal":"KILL"})");
}

namespace {

// A python3 HTTP server on PORT answering "PATH auth=... fwd=... from=LABEL":
// what it was asked and which request headers reached it.
std::string header_echo_server(int port, const std::string& label) {
  return "import http.server\n"
         "class H(http.server.BaseHTTPRequestHandler):\n"
         "    def do_GET(self):\n"
         "        b = ('%s auth=%s fwd=%s from=" +
         label +
         "' % (self.path, self.headers.get('Authorization'), "
         "self.headers.get('X-Forwarded-Host'))).encode()\n"
         "        self.send_response(200)\n"
         "        self.send_header('Content-Length', str(len(b)))\n"
         "        self.end_headers()\n"
         "        self.wfile.write(b)\n"
         "    def log_message(self, *args): pass\n"
         "http.server.HTTPServer(('0.0.0.0', " +
         std::to_string(port) + "), H).serve_forever()\n";
}

e2e::HttpReply url_get(Engine& engine, const std::string& sprite, const std::string& path,
                       const std::string& token) {
  e2e::HeaderList headers = {{"Host", sprite + ".localhost:" + std::to_string(engine.port())}};
  return engine.request("GET", path, "", headers, token);
}

}  // namespace

TEST_CASE("Sprite URL: NAME.localhost reaches port 8080 in that sprite, with its url_settings auth",
          "[proxy][url]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "web-a");
  create_sprite(engine, "web-b");
  Background a(engine, "web-a", {"python3", "-c", header_echo_server(8080, "a")});
  Background b(engine, "web-b", {"python3", "-c", header_echo_server(8080, "b")});
  wait_listening(engine, "web-a", 8080);
  wait_listening(engine, "web-b", 8080);

  // auth "sprite" (the default): the token is wanted, and never passed on.
  auto refused = url_get(engine, "web-a", "/x", "");
  CHECK(refused.status == 401);
  CHECK_THAT(refused.body, Contains("url_settings.auth"));
  auto reply = url_get(engine, "web-a", "/some/path?q=1", e2e::kTestToken);
  CHECK(reply.status == 200);
  CHECK(reply.body == "/some/path?q=1 auth=None fwd=web-a.localhost:" +
                          std::to_string(engine.port()) + " from=a");
  CHECK(url_get(engine, "web-b", "/", e2e::kTestToken).body.ends_with("from=b"));

  // auth "public": no token; an Authorization header of the app's own goes through.
  REQUIRE_THAT(engine.call("PUT", "/v1/sprites/web-b", R"({"url_settings":{"auth":"public"}})"),
               StartsWith("200 "));
  auto open = url_get(engine, "web-b", "/p", "");
  CHECK(open.status == 200);
  CHECK(open.body.ends_with("from=b"));
  e2e::HeaderList own = {{"Host", "web-b.localhost:" + std::to_string(engine.port())},
                         {"Authorization", "Basic YXBwOnNlY3JldA=="}};
  CHECK_THAT(engine.request("GET", "/", "", own, "").body, Contains("auth=Basic YXBwOnNlY3JldA=="));

  // Unknown sprite, nothing listening: one clear line, and the engine goes on.
  CHECK(url_get(engine, "nobody", "/", e2e::kTestToken).status == 404);
  a.stop();
  auto down = url_get(engine, "web-a", "/", e2e::kTestToken);
  CHECK(down.status == 502);
  CHECK_THAT(down.body, Contains("nothing answers on port 8080 in sprite web-a"));
  CHECK_THAT(engine.call("GET", "/v1/sprites/web-a"), StartsWith("200 "));
}

TEST_CASE("Sprite URL: routes to the service with an http_port", "[proxy][url][services]") {
  e2e::TempDir state;
  Engine engine(state);
  create_sprite(engine, "svc-web");
  json::object definition{{"cmd", "python3"},
                          {"args", json::array{"-c", header_echo_server(9000, "service")}},
                          {"http_port", 9000}};
  auto created = engine.request("PUT", "/v1/sprites/svc-web/services/web?duration=1s",
                                json::serialize(definition));
  REQUIRE(created.status == 200);
  const auto deadline = Clock::now() + kHangGuard;
  e2e::HttpReply reply;
  do {
    reply = url_get(engine, "svc-web", "/", e2e::kTestToken);
  } while (reply.status != 200 && Clock::now() < deadline);
  CHECK(reply.status == 200);
  CHECK(reply.body.ends_with("from=service"));
}
