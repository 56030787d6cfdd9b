// Checkpoints and restore (spec §7) through the real C++ client against a
// real engine: what a restore brings back (/etc, /usr, /home/sprite, host
// files deleted in the sprite), live checkpoints, ids and the current
// marker, the read-only view at /.sprite/checkpoints, refusals, and crash
// safety: the engine is SIGKILLed at random points of checkpoints and
// restores, many times, and every checkpoint and the sprite stay whole.
#include <catch2/catch.hpp>

#include <boost/asio.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "client_support.hpp"
#include "engine.hpp"
#include "process.hpp"

namespace {

namespace asio = boost::asio;
using namespace spritescript;
using Catch::Matchers::Contains;
using e2e::run;

struct Sprite {
  explicit Sprite(int port) : api(io.get_executor(), e2e::client_config(port)) {}

  void create(const std::string& name) {
    proto::CreateSpriteRequest request;
    request.name = name;
    run(io, api.create_sprite(request));
  }
  client::ExecResult sh(const std::string& name, const std::string& script) {
    proto::ExecOptions options;
    options.argv = {"sh", "-c", script};
    return run(io, api.run(name, options));
  }
  std::string out(const std::string& name, const std::string& script) {
    auto result = sh(name, script);
    INFO(result.stderr_data);
    REQUIRE(result.exit_code == 0);
    return result.stdout_data;
  }

  asio::io_context io;
  client::Client api;
};

// Every event of a checkpoint or restore stream, in order.
asio::awaitable<std::vector<proto::ProgressEvent>> all_events(
    asio::awaitable<std::unique_ptr<client::EventStream>> open) {
  auto stream = co_await std::move(open);
  std::vector<proto::ProgressEvent> events;
  while (auto event = co_await stream->next()) events.push_back(std::move(*event));
  co_return events;
}

}  // namespace

TEST_CASE("checkpoints: a restore brings /etc, /usr and /home/sprite back as they were",
          "[checkpoints]") {
  e2e::TempDir state;
  e2e::Engine engine(state);
  Sprite s(engine.port());
  s.create("box");
  // The state to keep: files in all three places, a host file and a host
  // directory deleted (overlay whiteout and opaque directory), a "package".
  s.out("box",
        "set -e; echo keep > /home/sprite/notes; mkdir -p /home/sprite/src/deep;"
        "echo code > /home/sprite/src/deep/main.c; echo cfg > /etc/app.conf; rm /etc/motd;"
        "rm -rf /etc/apt/apt.conf.d; mkdir -p /usr/local/lib/pkg;"
        "printf '#!/bin/sh\\necho tool v1\\n' > /usr/local/bin/tool; chmod 755 /usr/local/bin/tool;"
        "ln -s /home/sprite/notes /home/sprite/link; chmod 600 /home/sprite/notes");
  const std::string id = run(s.io, s.api.checkpoint("box", "before the agent"));
  CHECK(id == "v0");

  // Everything changes afterwards, "package installs" included.
  s.out("box",
        "set -e; echo changed > /home/sprite/notes; rm -rf /home/sprite/src; echo new > "
        "/home/sprite/new; echo motd > /etc/motd; rm /etc/app.conf; mkdir /etc/apt/apt.conf.d;"
        "printf '#!/bin/sh\\necho tool v2\\n' > /usr/local/bin/tool; touch /usr/local/lib/pkg/x;"
        "echo junk > /usr/share/junk; rm -f /home/sprite/link");
  auto events = run(s.io, all_events(s.api.restore_checkpoint("box", id)));
  REQUIRE_FALSE(events.empty());
  CHECK(events.front().type == "info");
  CHECK(events.back().type == "complete");

  CHECK(s.out("box", "cat /home/sprite/notes") == "keep\n");
  CHECK(s.out("box", "stat -c %a /home/sprite/notes") == "600\n");
  CHECK(s.out("box", "cat /home/sprite/src/deep/main.c") == "code\n");
  CHECK(s.out("box", "readlink /home/sprite/link") == "/home/sprite/notes\n");
  CHECK(s.out("box", "cat /etc/app.conf") == "cfg\n");
  CHECK(s.out("box", "/usr/local/bin/tool") == "tool v1\n");
  CHECK(s.out("box", "ls -A /usr/local/lib/pkg") == "");
  CHECK(s.sh("box", "test -e /home/sprite/new").exit_code == 1);
  CHECK(s.sh("box", "test -e /etc/motd").exit_code == 1);
  CHECK(s.sh("box", "test -e /etc/apt/apt.conf.d").exit_code == 1);
  CHECK(s.sh("box", "test -e /usr/share/junk").exit_code == 1);
  CHECK(s.sh("box", "test -d /etc/apt/sources.list.d").exit_code == 0);  // host's, untouched

  // The restored state is a new starting point: change, checkpoint, restore.
  s.out("box", "echo second > /home/sprite/notes");
  const std::string second = run(s.io, s.api.checkpoint("box"));
  CHECK(second == "v1");
  s.out("box", "rm /home/sprite/notes");
  run(s.io, s.api.restore("box", second));
  CHECK(s.out("box", "cat /home/sprite/notes") == "second\n");
  run(s.io, s.api.restore("box", id));
  CHECK(s.out("box", "cat /home/sprite/notes") == "keep\n");
}

TEST_CASE("checkpoints: live, running processes keep running, and a restore ends them",
          "[checkpoints]") {
  e2e::TempDir state;
  e2e::Engine engine(state);
  Sprite s(engine.port());
  s.create("live");
  // A detached ticker that writes while the checkpoint is taken.
  s.out("live",
        "nohup sh -c 'while :; do echo tick >> /home/sprite/ticks; sleep 0.01; done' "
        ">/dev/null 2>&1 & echo $! > /home/sprite/ticker.pid");
  auto proto_options = e2e::command({"sleep", "600"});
  proto_options.max_run_after_disconnect = std::chrono::seconds(0);
  auto sleeper = run(s.io, s.api.exec("live", proto_options));
  const std::string id = run(s.io, s.api.checkpoint("live", "while ticking"));
  CHECK(s.sh("live", "kill -0 $(cat /home/sprite/ticker.pid)").exit_code == 0);
  const std::string before = s.out("live", "wc -l < /home/sprite/ticks");
  s.out("live", "sleep 0.2");
  CHECK(std::stoi(s.out("live", "wc -l < /home/sprite/ticks")) > std::stoi(before));

  run(s.io, s.api.restore("live", id));
  // The session's process was ended by the restore and reported like a kill.
  auto exit = run(s.io, [&]() -> asio::awaitable<int> {
    for (;;) {
      auto event = co_await sleeper->next();
      if (event.type == client::ExecEvent::Type::exit) co_return event.exit_code;
    }
  }());
  CHECK(exit == 137);
  CHECK(s.sh("live", "kill -0 $(cat /home/sprite/ticker.pid)").exit_code != 0);
  // The checkpoint holds the file as it was at that moment: whole lines.
  const std::string kept = s.out("live", "cat /home/sprite/ticks");
  CHECK_FALSE(kept.empty());
  CHECK(kept.back() == '\n');
}

TEST_CASE("checkpoints: ids, comments, the current marker, /.sprite/checkpoints and refusals",
          "[checkpoints]") {
  e2e::TempDir state;
  e2e::Engine engine(state);
  Sprite s(engine.port());
  s.create("ids");
  CHECK(run(s.io, s.api.list_checkpoints("ids")).empty());
  s.out("ids", "echo 1 > /home/sprite/f");
  CHECK(run(s.io, s.api.checkpoint("ids", "one")) == "v0");
  s.out("ids", "echo 2 > /home/sprite/f");
  CHECK(run(s.io, s.api.checkpoint("ids", "two")) == "v1");

  auto list = run(s.io, s.api.list_checkpoints("ids"));
  REQUIRE(list.size() == 2);
  CHECK(list[0].id == "v1");  // newest first
  CHECK(list[0].comment == "two");
  CHECK(list[1].id == "v0");
  CHECK_FALSE(list[0].create_time.empty());
  CHECK_FALSE(list[0].is_auto);
  auto one = run(s.io, s.api.get_checkpoint("ids", "v0"));
  CHECK(one.comment == "one");
  CHECK_FALSE(one.current);

  // Inside the sprite, read-only.
  CHECK(s.out("ids", "cat /.sprite/checkpoints/v0/home/sprite/f") == "1\n");
  CHECK(s.out("ids", "cat /.sprite/checkpoints/v1/home/sprite/f") == "2\n");
  auto write = s.sh("ids", "echo x > /.sprite/checkpoints/v0/home/sprite/f");
  CHECK(write.exit_code != 0);
  CHECK_THAT(write.stderr_data, Contains("Read-only"));

  // The raw wire: Go needs exactly 200 and NDJSON; lists are arrays.
  auto raw = run(s.io, s.api.call("GET", "/v1/sprites/ids/checkpoints"));
  CHECK(raw.status == 200);
  CHECK(raw.body.front() == '[');

  run(s.io, s.api.restore("ids", "v0"));
  CHECK(run(s.io, s.api.get_checkpoint("ids", "v0")).current);
  std::string message;
  try {
    run(s.io, s.api.delete_checkpoint("ids", "v0"));
    FAIL("deleting the current checkpoint succeeded");
  } catch (const client::Error& e) {
    CHECK(e.kind() == client::ErrorKind::conflict);
    message = e.what();
  }
  CHECK_THAT(message, Contains("current"));
  run(s.io, s.api.delete_checkpoint("ids", "v1"));
  CHECK(run(s.io, s.api.list_checkpoints("ids")).size() == 1);
  CHECK(s.sh("ids", "test -e /.sprite/checkpoints/v1").exit_code != 0);
  // Ids are never reused.
  CHECK(run(s.io, s.api.checkpoint("ids")) == "v2");

  auto kind_of = [&](auto work) {
    try {
      run(s.io, std::move(work));
    } catch (const client::Error& e) {
      return e.kind();
    }
    return client::ErrorKind::api;
  };
  CHECK(kind_of(s.api.get_checkpoint("ids", "v9")) == client::ErrorKind::not_found);
  CHECK(kind_of(s.api.get_checkpoint("ids", "../../etc")) == client::ErrorKind::not_found);
  CHECK(kind_of(s.api.restore("ids", "v9")) == client::ErrorKind::not_found);
  CHECK(kind_of(s.api.delete_checkpoint("ids", "v9")) == client::ErrorKind::not_found);
  CHECK(kind_of(s.api.checkpoint("nosuch")) == client::ErrorKind::not_found);
  auto bad = run(s.io, s.api.call("POST", "/v1/sprites/ids/checkpoint", "{not json"));
  CHECK(bad.status == 400);
  // The engine still serves.
  CHECK(s.out("ids", "cat /home/sprite/f") == "1\n");
}

TEST_CASE("checkpoints: SIGKILL at random points of checkpoints and restores loses nothing",
          "[checkpoints][crash]") {
  e2e::TempDir state;
  std::mt19937 random(std::random_device{}());
  // What each checkpoint must hold: the value of /home/sprite/marker.
  std::map<std::string, std::string> expected;
  std::set<std::string> layer_states;  // what the sprite's marker may say
  {
    e2e::Engine engine(state);
    Sprite s(engine.port());
    s.create("crash");
    // Enough data that a copy takes a while: 400 files, 24 MB.
    s.out("crash",
          "set -e; mkdir -p /home/sprite/data; cd /home/sprite/data; "
          "head -c 24000000 /dev/urandom | split -b 60000 -a 3 - part; "
          "md5sum part* > /home/sprite/sums; echo base > /home/sprite/marker");
    expected[run(s.io, s.api.checkpoint("crash", "base"))] = "base";
    layer_states.insert("base");
  }
  constexpr int kRounds = 12;
  int interrupted = 0;
  for (int round = 0; round < kRounds; ++round) {
    e2e::Engine engine(state);
    Sprite s(engine.port());
    const std::string value = "round" + std::to_string(round);
    s.out("crash", "echo " + value + " > /home/sprite/marker");
    layer_states.insert(value);
    const bool restoring = round % 2 == 1;
    std::optional<std::string> finished_id;
    bool done = false;
    auto work = [&]() -> asio::awaitable<void> {
      if (restoring) {
        co_await s.api.restore("crash", expected.begin()->first);
      } else {
        finished_id = co_await s.api.checkpoint("crash", value);
      }
      done = true;
    };
    asio::co_spawn(s.io, work(), [](std::exception_ptr) {});
    const auto delay =
        std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 250)(random));
    s.io.restart();
    s.io.run_for(delay);
    engine.stop(SIGKILL);
    s.io.run_for(std::chrono::milliseconds(20));
    if (!done) ++interrupted;
    if (finished_id) expected[*finished_id] = value;
  }
  // Whatever happened, after a restart every checkpoint is whole and the
  // sprite has one complete state (never a mix).
  e2e::Engine engine(state);
  Sprite s(engine.port());
  const std::string marker = s.out("crash", "cat /home/sprite/marker");
  CHECK(layer_states.count(marker.substr(0, marker.size() - 1)) == 1);
  CHECK(s.out("crash", "cd /home/sprite/data && md5sum -c --quiet ../sums && echo whole") ==
        "whole\n");
  auto list = run(s.io, s.api.list_checkpoints("crash"));
  std::set<std::string> listed;
  for (const auto& c : list) listed.insert(c.id);
  for (const auto& [id, value] : expected) CHECK(listed.count(id) == 1);  // none lost
  for (const auto& c : list) {
    INFO("checkpoint " << c.id);
    const std::string dir = "/.sprite/checkpoints/" + c.id + "/home/sprite";
    CHECK(s.out("crash", "cd " + dir + "/data && md5sum -c --quiet " + dir +
                             "/sums && echo whole") == "whole\n");
    if (expected.count(c.id))
      CHECK(s.out("crash", "cat " + dir + "/marker") == expected[c.id] + "\n");
    // A checkpoint whose stream was cut may still have been committed: it
    // holds one of the states the sprite had.
    const std::string m = s.out("crash", "cat " + dir + "/marker");
    CHECK(layer_states.count(m.substr(0, m.size() - 1)) == 1);
  }
  // Nothing half-done is left behind, and checkpoints work on.
  CHECK(std::filesystem::is_empty(state.path() / "sprites" / "crash" / "checkpoint-tmp"));
  const std::string last = run(s.io, s.api.checkpoint("crash", "after"));
  run(s.io, s.api.restore("crash", last));
  CHECK(s.out("crash", "cd /home/sprite/data && md5sum -c --quiet ../sums && echo whole") ==
        "whole\n");
  WARN("rounds interrupted mid-way: " << interrupted << " of " << kRounds);
}

TEST_CASE("checkpoints: an idle sprite gets automatic checkpoints, hidden unless asked, pruned",
          "[checkpoints][auto]") {
  e2e::TempDir state;
  e2e::Engine engine(state, {"--idle-timeout", "300ms", "--cold-timeout", "60s"});
  Sprite s(engine.port());
  s.create("idle");
  auto autos = [&]() {
    std::vector<proto::Checkpoint> out;
    for (auto& c : run(s.io, s.api.list_checkpoints("idle", true))) {
      if (c.is_auto) out.push_back(c);
    }
    return out;
  };
  auto wait_for_autos = [&](std::size_t count) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < end) {
      auto list = autos();
      if (list.size() >= count) return list;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL("no automatic checkpoint appeared");
    return std::vector<proto::Checkpoint>{};
  };
  s.out("idle", "echo first > /home/sprite/f");
  auto first = wait_for_autos(1);
  CHECK(first[0].id == "auto-0");
  CHECK(run(s.io, s.api.list_checkpoints("idle")).empty());  // hidden by default
  CHECK(s.out("idle", "cat /.sprite/checkpoints/auto-0/home/sprite/f") == "first\n");

  // Each wake and pause makes one more; only the newest three stay.
  for (int i = 0; i < 4; ++i) {
    s.out("idle", "echo " + std::to_string(i) + " > /home/sprite/f");
    const std::string wanted = "auto-" + std::to_string(i + 1);
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    bool seen = false;
    while (!seen && std::chrono::steady_clock::now() < end) {
      for (const auto& c : autos()) seen = seen || c.id == wanted;
      if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    REQUIRE(seen);
  }
  auto kept = autos();
  REQUIRE(kept.size() == 3);
  CHECK(kept[0].id == "auto-4");
  CHECK(kept[2].id == "auto-2");
  // An automatic checkpoint restores like any other.
  run(s.io, s.api.restore("idle", "auto-4"));
  CHECK(s.out("idle", "cat /home/sprite/f") == "3\n");
}

TEST_CASE("checkpoints: a restore that fails says so in the stream and leaves the sprite as it was",
          "[checkpoints]") {
  e2e::TempDir state;
  e2e::Engine engine(state);
  Sprite s(engine.port());
  s.create("failing");
  s.out("failing", "echo before > /home/sprite/f");
  const std::string id = run(s.io, s.api.checkpoint("failing"));
  s.out("failing", "echo after > /home/sprite/f");
  // A broken disk: the engine's scratch directory cannot be made.
  const auto scratch = state.path() / "sprites" / "failing" / "checkpoint-tmp";
  std::filesystem::remove_all(scratch);
  std::ofstream(scratch) << "not a directory";
  std::string message;
  try {
    run(s.io, s.api.restore("failing", id));
    FAIL("the restore succeeded");
  } catch (const client::Error& e) {
    CHECK(e.kind() == client::ErrorKind::api);  // the stream's error event
    message = e.what();
  }
  CHECK_THAT(message, Contains("unchanged"));
  CHECK(s.out("failing", "cat /home/sprite/f") == "after\n");  // as it was, and answering
  std::filesystem::remove(scratch);
  run(s.io, s.api.restore("failing", id));
  CHECK(s.out("failing", "cat /home/sprite/f") == "before\n");
}

TEST_CASE("checkpoints: --auto-checkpoints 0 takes none", "[checkpoints][auto]") {
  e2e::TempDir state;
  e2e::Engine engine(state, {"--idle-timeout", "200ms", "--auto-checkpoints", "0"});
  Sprite s(engine.port());
  s.create("noauto");
  s.out("noauto", "echo x > /home/sprite/f");
  // Long enough for several pauses: the sprite goes warm after 200 ms.
  for (int i = 0; i < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    s.out("noauto", "true");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  CHECK(run(s.io, s.api.list_checkpoints("noauto", true)).empty());
}
