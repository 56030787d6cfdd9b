// The local engine's REST API and sprite store, without sockets: requests
// go straight into engine::Api (the HTTP listener is covered end to end in
// tests/e2e/serve_test.cpp).
#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <filesystem>

#include "engine/api.hpp"
#include "engine/ports.hpp"
#include "engine/store.hpp"
#include "proto/http_target.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;
using spritescript::engine::Api;
using spritescript::engine::HttpRequest;
using spritescript::engine::HttpResponse;
using spritescript::engine::Store;

namespace {

struct TempState {
  fs::path dir =
      fs::temp_directory_path() / ("spritescript-engine-" + spritescript::engine::random_hex(6));
  TempState() { fs::create_directories(dir); }
  ~TempState() { fs::remove_all(dir); }
  TempState(const TempState&) = delete;
  TempState& operator=(const TempState&) = delete;
};

struct Engine {
  TempState state;
  Store store{state.dir};
  Api api{store, "secret", 7777};

  HttpResponse call(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& token = "secret") {
    return api.handle(HttpRequest{method, target, "Bearer " + token, "", body});
  }
  json::value call_json(const std::string& method, const std::string& target,
                        const std::string& body = "") {
    return json::parse(call(method, target, body).body);
  }
};

}  // namespace

TEST_CASE("every endpoint refuses a missing or wrong token with 401", "[engine]") {
  Engine e;
  for (const char* target : {"/v1/sprites", "/v1/sprites/x", "/v1/sprites/x/exec", "/nope"}) {
    INFO(target);
    auto r = e.call("GET", target, "", "wrong");
    CHECK(r.status == 401);
    CHECK(json::parse(r.body).at("error") == "unauthorized");
    CHECK(e.api.handle(HttpRequest{"GET", target, "", "", ""}).status == 401);
  }
}

TEST_CASE("create answers 201 with the sprite, and refuses duplicates and bad names", "[engine]") {
  Engine e;
  auto r = e.call("POST", "/v1/sprites",
                  R"({"name":"ci-7","labels":["ci"],"url_settings":{"auth":"public"}})");
  REQUIRE(r.status == 201);
  auto s = json::parse(r.body).as_object();
  CHECK(s.at("name") == "ci-7");
  CHECK(s.at("status") == "cold");
  CHECK(s.at("organization") == "local");
  CHECK(s.at("url_settings").at("auth") == "public");
  CHECK(s.at("labels").as_array().size() == 1);
  CHECK(s.at("id").as_string().size() == 36);
  CHECK_FALSE(s.at("created_at").as_string().empty());

  CHECK(e.call("POST", "/v1/sprites", R"({"name":"ci-7"})").status == 409);
  for (const char* bad :
       {R"({"name":"Bad"})", R"({"name":"-x"})", R"({"name":""})", R"({})", R"([1])", "not json",
        R"({"name":"x","labels":"ci"})", R"({"name":"x","url_settings":{"auth":"everyone"}})"}) {
    INFO(bad);
    auto bad_r = e.call("POST", "/v1/sprites", bad);
    CHECK(bad_r.status == 400);
    CHECK_FALSE(json::parse(bad_r.body).at("message").as_string().empty());
  }
  CHECK(e.store.size() == 1);  // nothing half-created
}

TEST_CASE("get, update and delete", "[engine]") {
  Engine e;
  e.call("POST", "/v1/sprites", R"({"name":"dev","labels":["a","b"]})");
  CHECK(e.call_json("GET", "/v1/sprites/dev").at("name") == "dev");
  CHECK(e.call("GET", "/v1/sprites/nope").status == 404);

  auto u = e.call("PUT", "/v1/sprites/dev", R"({"url_settings":{"auth":"public"},"labels":["c"]})");
  REQUIRE(u.status == 200);
  auto s = json::parse(u.body);
  CHECK(s.at("url_settings").at("auth") == "public");
  CHECK(s.at("labels").as_array().size() == 1);
  CHECK(e.call_json("PUT", "/v1/sprites/dev", R"({"clear_labels":true})")
            .at("labels")
            .as_array()
            .empty());

  CHECK(e.call("DELETE", "/v1/sprites/dev").status == 204);
  CHECK(e.call("GET", "/v1/sprites/dev").status == 404);
  CHECK(e.call("DELETE", "/v1/sprites/dev").status == 404);
  CHECK(e.call("GET", "/v1/sprites/dev/control").status == 404);
}

TEST_CASE("list filters by prefix and pages with a continuation token", "[engine]") {
  Engine e;
  for (int i = 0; i < 60; ++i) {
    char name[16];
    std::snprintf(name, sizeof name, "ci-%02d", i);
    e.call("POST", "/v1/sprites", std::string(R"({"name":")") + name + "\"}");
  }
  e.call("POST", "/v1/sprites", R"({"name":"dev"})");

  auto page1 = e.call_json("GET", "/v1/sprites?prefix=ci-&max_results=100").as_object();
  CHECK(page1.at("sprites").as_array().size() == 50);  // clamped, not rejected
  CHECK(page1.at("has_more") == true);
  CHECK(page1.at("cold") == 61);
  CHECK(page1.at("org").at("cold") == 61);
  std::string token(page1.at("next_continuation_token").as_string());
  auto page2 = e.call_json("GET", "/v1/sprites?prefix=ci-&continuation_token=" + token).as_object();
  CHECK(page2.at("sprites").as_array().size() == 10);
  CHECK(page2.at("has_more") == false);
  CHECK_FALSE(page2.contains("next_continuation_token"));
  CHECK(page2.at("sprites").as_array().back().at("name") == "ci-59");

  CHECK(e.call_json("GET", "/v1/sprites?prefix=dev").at("sprites").as_array().size() == 1);
  CHECK(e.call_json("GET", "/v1/sprites?max_results=5").at("sprites").as_array().size() == 5);
  CHECK(e.call("GET", "/v1/sprites?max_results=many").status == 400);
}

TEST_CASE("sprites survive a restart and deletes are final", "[engine]") {
  TempState state;
  {
    Store store(state.dir);
    Api api(store, "t", 1);
    api.handle({"POST", "/v1/sprites", "Bearer t", "", R"({"name":"keep","labels":["x"]})"});
    api.handle({"POST", "/v1/sprites", "Bearer t", "", R"({"name":"gone"})"});
    api.handle({"DELETE", "/v1/sprites/gone", "Bearer t", "", ""});
  }
  Store reopened(state.dir);
  REQUIRE(reopened.get("keep"));
  CHECK(reopened.get("keep")->labels == std::vector<std::string>{"x"});
  CHECK_FALSE(reopened.get("gone"));
  for (const auto& entry : fs::recursive_directory_iterator(state.dir)) {
    INFO(entry.path());
    CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);
    CHECK(entry.path().filename().string().find(".trash-") == std::string::npos);
  }
}

TEST_CASE("a store finishes an interrupted delete and ignores an unfinished create", "[engine]") {
  TempState state;
  fs::create_directories(state.dir / "sprites" / ".trash-old-1234");
  fs::create_directories(state.dir / "sprites" / "half-made");  // no sprite.json yet
  Store store(state.dir);
  CHECK(store.size() == 0);
  CHECK_FALSE(fs::exists(state.dir / "sprites" / ".trash-old-1234"));
}

TEST_CASE("sprite names follow DNS labels", "[engine]") {
  using spritescript::engine::check_sprite_name;
  CHECK(check_sprite_name("dev").empty());
  CHECK(check_sprite_name("ci-7").empty());
  CHECK(check_sprite_name(std::string(63, 'a')).empty());
  CHECK_FALSE(check_sprite_name(std::string(64, 'a')).empty());
  CHECK_FALSE(check_sprite_name("").empty());
  CHECK_FALSE(check_sprite_name("Dev").empty());
  CHECK_FALSE(check_sprite_name("a_b").empty());
  CHECK_FALSE(check_sprite_name("a.b").empty());
  CHECK_FALSE(check_sprite_name("-a").empty());
  CHECK_FALSE(check_sprite_name("a-").empty());
}

TEST_CASE("request targets: decoded segments, repeated query keys in order", "[proto]") {
  auto t =
      spritescript::proto::parse_target("/v1/sprites/a%20b/exec?cmd=sh&cmd=-c&cmd=echo+hi%21&tty");
  REQUIRE(t);
  CHECK(t->segments == std::vector<std::string>{"v1", "sprites", "a b", "exec"});
  CHECK(t->params("cmd") == std::vector<std::string>{"sh", "-c", "echo hi!"});
  CHECK(t->param("tty") == "");
  CHECK_FALSE(t->param("nope"));
  CHECK_FALSE(spritescript::proto::parse_target("v1/sprites"));
  CHECK_FALSE(spritescript::proto::parse_target("/v1/%zz"));
  CHECK_FALSE(spritescript::proto::parse_target("/v1/x?a=%4"));
}

TEST_CASE("listening ports: /proc/net/tcp lines, without the engine's proxy", "[engine][ports]") {
  // 0.0.0.0:8080 listening, 127.0.0.53:3128 listening (the engine's), and an
  // established connection (state 01).
  const char* text =
      "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout "
      "inode\n"
      "   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
      "1111 1 0000000000000000 100 0 0 10 0\n"
      "   1: 3500007F:0C38 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 "
      "2222 1 0000000000000000 100 0 0 10 0\n"
      "   2: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 "
      "3333 1 0000000000000000 100 0 0 10 0\n";
  auto ports = spritescript::engine::parse_proc_net_tcp(text, false);
  REQUIRE(ports.size() == 1);
  CHECK(ports[0].port == 8080);
  CHECK(ports[0].address == "0.0.0.0");
  CHECK(ports[0].inode == 1111);
}
