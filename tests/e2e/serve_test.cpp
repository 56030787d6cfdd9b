// `spritescript serve`: the local engine over real HTTP on loopback, driven
// with the tests' own HTTP client (ws_client.hpp). Each test starts an engine
// on a random port with a temporary state dir (engine.hpp).
#include <catch2/catch.hpp>

#include <signal.h>

#include <sys/stat.h>
#include <filesystem>
#include <fstream>
#include <string>

#include "engine.hpp"
#include "process.hpp"

namespace {

using Catch::Matchers::Contains;
using e2e::Engine;
using e2e::listening_url;
using e2e::port_of;

}  // namespace

TEST_CASE("serve answers the sprites API on loopback with a token", "[serve]") {
  e2e::TempDir state;
  Engine engine(state);
  CHECK_THAT(engine.call("GET", "/v1/sprites", "", "wrong"), Catch::StartsWith("401 {\"error\""));
  CHECK_THAT(engine.call("POST", "/v1/sprites", R"({"name":"ci-1","labels":["ci"]})"),
             Catch::StartsWith("201 {") && Contains("\"name\":\"ci-1\""));
  CHECK_THAT(engine.call("POST", "/v1/sprites", R"({"name":"ci-1"})"), Catch::StartsWith("409 "));
  CHECK_THAT(engine.call("GET", "/v1/sprites/ci-1"),
             Catch::StartsWith("200 ") && Contains("\"status\":\"cold\""));
  CHECK_THAT(engine.call("GET", "/v1/sprites?prefix=ci-"), Contains("\"has_more\":false"));
  CHECK(engine.call("DELETE", "/v1/sprites/ci-1") == "204 ");
  CHECK_THAT(engine.call("GET", "/v1/sprites/ci-1"), Catch::StartsWith("404 "));
  e2e::Result r = engine.stop();
  CHECK(r.exited);
  CHECK(r.exit_code == 0);
}

TEST_CASE("sprites survive an engine killed with SIGKILL", "[serve]") {
  e2e::TempDir state;
  {
    Engine engine(state);
    REQUIRE_THAT(engine.call("POST", "/v1/sprites", R"({"name":"durable"})"),
                 Catch::StartsWith("201 "));
    engine.stop(SIGKILL);
  }
  Engine again(state);
  CHECK_THAT(again.call("GET", "/v1/sprites/durable"), Catch::StartsWith("200 "));
}

TEST_CASE("without --token the engine makes one and keeps it 0600 in the state dir", "[serve]") {
  e2e::TempDir state;
  e2e::Child child(e2e::spritescript({"serve", "--state-dir", state.path().string()}));
  REQUIRE(child.wait_for_stdout(" (state dir"));
  struct stat st {};
  REQUIRE(::stat((state.path() / "token").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  std::ifstream in(state.path() / "token");
  std::string token;
  std::getline(in, token);
  CHECK(token.size() == 64);
  child.send_signal(SIGTERM);
  e2e::Result r = child.wait();
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out + r.err, !Contains(token));  // the token is never printed
}

TEST_CASE("serve refuses bad options in one line with exit 2", "[serve]") {
  e2e::TempDir state;
  for (std::vector<std::string> args :
       {std::vector<std::string>{"serve", "--listen"},
        {"serve", "--frob"},
        {"serve", "--listen", "nocolon", "--state-dir", state.path().string()}}) {
    e2e::Result r = e2e::run(e2e::spritescript(args));
    INFO(r.describe());
    CHECK(r.exit_code == 2);
    CHECK(r.err_lines().size() == 1);
  }
}

TEST_CASE("a port already in use is one clear line and exit 1", "[serve]") {
  e2e::TempDir state;
  e2e::Child first(e2e::spritescript({"serve", "--state-dir", state.path().string()}));
  REQUIRE(first.wait_for_stdout(" (state dir"));
  std::string port = port_of(listening_url(first.out()));
  e2e::TempDir other_state;  // the same state dir would be refused earlier, by its lock
  e2e::Result second = e2e::run(e2e::spritescript(
      {"serve", "--state-dir", other_state.path().string(), "--listen", "127.0.0.1:" + port}));
  INFO(second.describe());
  CHECK(second.exit_code == 1);
  REQUIRE(second.err_lines().size() == 1);
  CHECK_THAT(second.err,
             Contains("cannot listen on 127.0.0.1:" + port) && Contains("Address already in use"));
  first.send_signal(SIGTERM);
  CHECK(first.wait().exit_code == 0);
}

TEST_CASE("one engine per state dir and engine status and stop find it", "[serve]") {
  e2e::TempDir state;
  const std::string dir = state.path().string();
  e2e::Result before = e2e::run(e2e::spritescript({"engine", "status", "--state-dir", dir}));
  CHECK(before.exit_code == 3);
  CHECK_THAT(before.out, Contains("not running"));

  e2e::Child engine(e2e::spritescript({"serve", "--state-dir", dir}));
  REQUIRE(engine.wait_for_stdout(" (state dir"));
  std::string url = listening_url(engine.out());

  e2e::Result second = e2e::run(e2e::spritescript({"serve", "--state-dir", dir}));
  CHECK(second.exit_code == 1);
  REQUIRE(second.err_lines().size() == 1);
  CHECK_THAT(second.err, Contains("another engine already serves") && Contains(url));

  e2e::Result status = e2e::run(e2e::spritescript({"engine", "status", "--state-dir", dir}));
  CHECK(status.exit_code == 0);
  CHECK_THAT(status.out, Contains("running at " + url));

  e2e::Result stop = e2e::run(e2e::spritescript({"engine", "stop", "--state-dir", dir}));
  CHECK(stop.exit_code == 0);
  CHECK_THAT(stop.out, Contains("stopped"));
  CHECK(engine.wait().exit_code == 0);
  CHECK(e2e::run(e2e::spritescript({"engine", "status", "--state-dir", dir})).exit_code == 3);
  CHECK(e2e::run(e2e::spritescript({"engine", "stop", "--state-dir", dir})).exit_code == 0);
  CHECK(e2e::run(e2e::spritescript({"engine", "frob"})).exit_code == 2);
}
