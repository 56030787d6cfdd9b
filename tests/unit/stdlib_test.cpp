// The Lua standard library is compiled into the binary.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "bindings/stdlib.hpp"

using spritescript::stdlib::find_builtin;

TEST_CASE("every lua/stdlib file is embedded under its module name", "[stdlib]") {
  for (const char* name : {"sprites", "sprites.task", "sprites.error", "spritescript.runtime",
                           "spritescript.loader"}) {
    auto source = find_builtin(name);
    INFO(name);
    REQUIRE(source);
    CHECK(source->chunkname.rfind("@stdlib/", 0) == 0);
    CHECK_FALSE(source->code.empty());
  }
  CHECK(find_builtin("sprites")->chunkname == "@stdlib/sprites/init.lua");
  CHECK_FALSE(find_builtin("no.such.module"));
}

TEST_CASE("SPRITESCRIPT_STDLIB_DIR reads modules from a source tree", "[stdlib]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / "spritescript-stdlib-test";
  fs::create_directories(dir / "sprites");
  std::ofstream(dir / "sprites" / "task.lua") << "return 'from disk'";
  std::ofstream(dir / "brand_new.lua") << "return 'new'";
  ::setenv("SPRITESCRIPT_STDLIB_DIR", dir.c_str(), 1);
  auto task = find_builtin("sprites.task");
  auto fresh = find_builtin("brand_new");
  auto embedded = find_builtin("sprites.error");  // not in the dir: the embedded copy
  ::unsetenv("SPRITESCRIPT_STDLIB_DIR");
  fs::remove_all(dir);

  REQUIRE(task);
  CHECK(task->code == "return 'from disk'");
  CHECK(task->chunkname == "@" + (dir / "sprites" / "task.lua").string());
  REQUIRE(fresh);
  CHECK(fresh->code == "return 'new'");
  REQUIRE(embedded);
  CHECK(embedded->chunkname == "@stdlib/sprites/error.lua");
}
