// `spritescript engine start|status|stop|logs`: the local engine started in
// the background, found again, shared by racing starters, and stopped.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"

namespace {

// "started at http://127.0.0.1:PORT (pid N, ...)" -> the URL.
std::string url_in(const std::string& line) {
  auto start = line.find("http://");
  if (start == std::string::npos) return {};
  auto end = line.find(' ', start);
  return line.substr(start, end - start);
}

e2e::Result engine(const std::string& verb, const e2e::TempDir& state) {
  return e2e::run(
      e2e::spritescript({"engine", verb, "--state-dir", (state.path() / "engine").string()}));
}

}  // namespace

TEST_CASE("engine start runs one engine in the background and engine stop ends it", "[engine]") {
  e2e::TempDir state;
  auto started = engine("start", state);
  REQUIRE(started.exit_code == 0);
  INFO(started.describe());
  CHECK(started.out.find("started at http://127.0.0.1:") == 0);
  const std::string url = url_in(started.out);
  REQUIRE_FALSE(url.empty());

  auto again = engine("start", state);
  CHECK(again.exit_code == 0);
  CHECK(again.out.find("running at " + url) == 0);  // reused, not a second one

  auto status = engine("status", state);
  CHECK(status.exit_code == 0);
  CHECK(status.out.find(url) != std::string::npos);

  auto logs = engine("logs", state);
  CHECK(logs.exit_code == 0);
  CHECK(logs.out.find("listening on " + url) != std::string::npos);
  std::ifstream token_file(state.path() / "engine" / "token");
  std::string token;
  std::getline(token_file, token);
  REQUIRE(token.size() >= 32);
  CHECK(logs.out.find(token) == std::string::npos);  // never printed

  auto stopped = engine("stop", state);
  CHECK(stopped.exit_code == 0);
  CHECK(engine("status", state).exit_code == 3);
}

TEST_CASE("clients that start the engine at the same time all get the same one", "[engine]") {
  e2e::TempDir state;
  std::vector<e2e::Result> results(4);
  std::vector<std::thread> starters;
  for (auto& result : results) {
    starters.emplace_back([&result, &state] { result = engine("start", state); });
  }
  for (auto& t : starters) t.join();
  std::set<std::string> urls;
  for (const auto& r : results) {
    INFO(r.describe());
    CHECK(r.exit_code == 0);
    urls.insert(url_in(r.out));
  }
  CHECK(urls.size() == 1);
  CHECK(engine("stop", state).exit_code == 0);
}

TEST_CASE("engine logs without a background engine says so in one line", "[engine]") {
  e2e::TempDir state;
  auto logs = engine("logs", state);
  CHECK(logs.exit_code == 1);
  CHECK(e2e::split_lines(logs.err).size() == 1);
  CHECK(logs.err.find("no log in") != std::string::npos);
}

TEST_CASE("engine with an unknown verb is a usage error", "[engine]") {
  auto r = e2e::run(e2e::spritescript({"engine", "restart"}));
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("engine needs 'start', 'status', 'stop' or 'logs'") != std::string::npos);
}
