// require: where modules are searched for, in which order, and how loading
// behaves (modules that wait, concurrent requires, broken modules).
//
// Every test builds this tree in a temporary directory:
//   scripts/main.lua                 the script (run by its absolute path)
//   project/.spritescript/           a parent of the working directory
//   project/work/.spritescript/      the working directory's own
//   config/spritescript/lua/         $XDG_CONFIG_HOME/spritescript/lua
//   path1/, path2/                   $SPRITESCRIPT_PATH=path1:path2
//   home/                            $HOME
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "process.hpp"

namespace {

using Catch::Matchers::Contains;
using e2e::Result;
namespace fs = std::filesystem;

class ModuleTree {
 public:
  // Where modules can live, in the order require searches them.
  static constexpr const char* kScriptDir = "scripts";
  static constexpr const char* kWorkDot = "project/work/.spritescript";
  static constexpr const char* kParentDot = "project/.spritescript";
  static constexpr const char* kConfig = "config/spritescript/lua";
  static constexpr const char* kPath1 = "path1";
  static constexpr const char* kPath2 = "path2";

  ModuleTree() {
    for (const char* dir : {kScriptDir, kWorkDot, kParentDot, kConfig, kPath1, kPath2, "home"}) {
      dir_.mkdir(dir);
    }
  }

  fs::path path(const fs::path& relative) const { return dir_.path() / relative; }

  // Writes a module file, e.g. module(kConfig, "a/b.lua", "return 1").
  fs::path module(const char* place, const fs::path& file, const std::string& source) const {
    return dir_.write(fs::path(place) / file, source);
  }

  e2e::Command command(const std::string& main_source) const {
    const fs::path script = dir_.write("scripts/main.lua", main_source);
    e2e::Command command = e2e::spritescript({"run", script.string()});
    command.cwd = path("project/work");
    command.env["HOME"] = path("home").string();
    command.env["XDG_CONFIG_HOME"] = path("config").string();
    command.env["SPRITESCRIPT_PATH"] = path(kPath1).string() + ":" + path(kPath2).string();
    return command;
  }

  Result run(const std::string& main_source) const { return e2e::run(command(main_source)); }

 private:
  e2e::TempDir dir_;
};

}  // namespace

// ---- where modules are found -------------------------------------------------------

TEST_CASE("a module next to the script is found", "[modules]") {
  ModuleTree tree;
  tree.module(ModuleTree::kScriptDir, "near.lua", "return 'near the script'");
  const Result r = tree.run("print(require 'near')");
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "near the script\n");
}

TEST_CASE("modules in .spritescript of the working directory and its parents are found",
          "[modules]") {
  ModuleTree tree;
  tree.module(ModuleTree::kWorkDot, "here.lua", "return 'working dir'");
  tree.module(ModuleTree::kParentDot, "above.lua", "return 'parent dir'");
  const Result r = tree.run("print(require 'here')\nprint(require 'above')");
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "working dir\nparent dir\n");
}

TEST_CASE("a module in $XDG_CONFIG_HOME/spritescript/lua is found", "[modules]") {
  ModuleTree tree;
  tree.module(ModuleTree::kConfig, "settings.lua", "return 'config dir'");
  const Result r = tree.run("print(require 'settings')");
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "config dir\n");
}

TEST_CASE("without XDG_CONFIG_HOME the config dir is ~/.config/spritescript/lua", "[modules]") {
  ModuleTree tree;
  tree.module("home/.config/spritescript/lua", "settings.lua", "return 'home config'");
  e2e::Command command = tree.command("print(require 'settings')");
  command.env["XDG_CONFIG_HOME"] = std::nullopt;
  const Result r = e2e::run(command);
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "home config\n");
}

TEST_CASE("modules in each directory of SPRITESCRIPT_PATH are found", "[modules]") {
  ModuleTree tree;
  tree.module(ModuleTree::kPath1, "first.lua", "return 'path1'");
  tree.module(ModuleTree::kPath2, "second.lua", "return 'path2'");
  const Result r = tree.run("print(require 'first')\nprint(require 'second')");
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "path1\npath2\n");
}

TEST_CASE("a.b is looked up as a/b.lua, then a/b/init.lua", "[modules]") {
  ModuleTree tree;
  tree.module(ModuleTree::kScriptDir, "a/b.lua", "return 'a/b.lua'");
  tree.module(ModuleTree::kParentDot, "a/c/init.lua", "return 'a/c/init.lua'");
  tree.module(ModuleTree::kPath2, "a/d.lua", "return 'a/d.lua'");
  tree.module(ModuleTree::kPath2, "a/d/init.lua", "return 'a/d/init.lua'");
  const Result r = tree.run("print(require 'a.b')\nprint(require 'a.c')\nprint(require 'a.d')");
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "a/b.lua\na/c/init.lua\na/d.lua\n");
}

// ---- precedence ------------------------------------------------------------------------

TEST_CASE("the first place in the search order wins", "[modules]") {
  ModuleTree tree;
  const std::vector<const char*> places = {ModuleTree::kScriptDir, ModuleTree::kWorkDot,
                                           ModuleTree::kParentDot, ModuleTree::kConfig,
                                           ModuleTree::kPath1,     ModuleTree::kPath2};
  std::vector<fs::path> files;
  for (const char* place : places) {
    files.push_back(tree.module(place, "shared.lua", std::string("return '") + place + "'"));
  }
  // Remove the winner each round: the next place in the order takes over.
  for (size_t i = 0; i < places.size(); ++i) {
    INFO("expected to win: " << places[i]);
    const Result r = tree.run("print(require 'shared')");
    INFO(r.describe());
    CHECK(r.exit_code == 0);
    CHECK(r.out == std::string(places[i]) + "\n");
    fs::remove(files[i]);
  }
}

TEST_CASE("a file next to the script does not shadow a built-in module", "[modules]") {
  ModuleTree tree;
  for (const char* place : {ModuleTree::kScriptDir, ModuleTree::kWorkDot, ModuleTree::kPath1}) {
    tree.module(place, "sprites.lua", "return 'impostor'");
    tree.module(place, "sprites/json.lua", "return 'impostor'");
  }
  const Result r = tree.run(
      "print(require('sprites') == sprites)\n"
      "print(require('sprites.json') == sprites.json, type(require('sprites.json').encode))");
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "true\ntrue\tfunction\n");
}

TEST_CASE("a missing module exits 4 and lists every place tried, in order", "[modules]") {
  ModuleTree tree;
  const Result r = tree.run("require 'nowhere'");
  INFO(r.describe());
  CHECK(r.exit_code == 4);
  CHECK_THAT(r.err, Contains("nowhere"));
  size_t previous = 0;
  for (const char* place : {ModuleTree::kScriptDir, ModuleTree::kWorkDot, ModuleTree::kParentDot,
                            ModuleTree::kConfig, ModuleTree::kPath1, ModuleTree::kPath2}) {
    const std::string tried = (tree.path(place) / "nowhere.lua").string();
    INFO("tried: " << tried);
    const size_t at = r.err.find(tried);
    REQUIRE(at != std::string::npos);
    CHECK(at > previous);
    previous = at;
  }
}

// ---- loading ---------------------------------------------------------------------------

TEST_CASE("a module whose top level waits loads", "[modules]") {
  ModuleTree tree;
  tree.module(ModuleTree::kScriptDir, "patient.lua",
              "sprites.sleep(0.01)\nreturn { greeting = 'waited' }");
  const Result r = tree.run("print(require('patient').greeting)");
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "waited\n");
}

TEST_CASE("tasks requiring a slow module at once share one load", "[modules]") {
  ModuleTree tree;
  tree.module(ModuleTree::kScriptDir, "slow.lua",
              "loads = (loads or 0) + 1\n"
              "sprites.sleep(0.05)\n"
              "return {}\n");
  const Result r = tree.run(
      "local function load() return require 'slow' end\n"
      "local a, b = sprites.spawn(load), sprites.spawn(load)\n"
      "local ma, mb = a:wait(), b:wait()\n"
      "print(type(ma), ma == mb, ma == require 'slow', loads)\n");
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "table\ttrue\ttrue\t1\n");
}

TEST_CASE("a module with a syntax error exits 3", "[modules]") {
  ModuleTree tree;
  tree.module(ModuleTree::kScriptDir, "broken.lua", "local x =\n");
  const Result r = tree.run("require 'broken'\nprint('not reached')");
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Contains("broken.lua:"));
}

TEST_CASE("a module that requires itself is a require cycle", "[modules]") {
  ModuleTree tree;
  tree.module(ModuleTree::kScriptDir, "ouroboros.lua", "require 'ouroboros'\nreturn {}\n");
  tree.module(ModuleTree::kScriptDir, "ping.lua", "require 'pong'\nreturn {}\n");
  tree.module(ModuleTree::kScriptDir, "pong.lua", "require 'ping'\nreturn {}\n");
  for (const char* name : {"ouroboros", "ping"}) {
    INFO("require '" << name << "'");
    const Result r = tree.run(std::string("require '") + name + "'\nprint('not reached')");
    INFO(r.describe());
    CHECK(r.exit_code == 1);
    CHECK(r.out.empty());
    CHECK_THAT(r.err, Contains("require cycle"));
  }
}
