// spritescript.core: the loop primitives the Lua scheduler is built on.
#include "lua_fixture.hpp"

namespace {
const std::string kPrelude = "local core = require 'spritescript.core' ";
}

TEST_CASE("a timer op completes through poll and reports its id", "[core]") {
  LuaFixture f;
  CHECK(f.eval(kPrelude + R"(
    local op, id = core.timer(0.001)
    assert(op:id() == id and not op:done())
    local ids = {}
    local n = 0
    while n == 0 do n = core.poll(-1, ids) end
    assert(n == 1 and ids[1] == id, "poll returns the finished op's id")
    assert(op:done())
    return tostring(op:result()))") == "true");
}

TEST_CASE("a cancelled timer completes with false", "[core]") {
  LuaFixture f;
  CHECK(f.eval(kPrelude + R"(
    local op, id = core.timer(60)
    op:cancel()
    local ids, n = {}, 0
    while n == 0 do n = core.poll(-1, ids) end
    return tostring(op:result()))") == "false");
}

TEST_CASE("poll with a timeout returns when nothing finishes", "[core]") {
  LuaFixture f;
  CHECK(f.eval(kPrelude + R"(
    local op = core.timer(60)
    local n = core.poll(0.01, {})
    op:cancel()
    return tostring(n))") == "0");
}

TEST_CASE("poll(0) does not block", "[core]") {
  LuaFixture f;
  CHECK(f.eval(kPrelude + "local n = core.poll(0, {}) return tostring(n)") == "0");
}

TEST_CASE("op:result() before completion is an error", "[core]") {
  LuaFixture f;
  CHECK_THAT(f.eval(kPrelude + "local op = core.timer(60) op:result()"),
             Catch::Contains("still running"));
}

TEST_CASE("many timers complete in deadline order", "[core]") {
  LuaFixture f;
  CHECK(f.eval(kPrelude + R"(
    local order, by_id = {}, {}
    for i = 5, 1, -1 do
      local op, id = core.timer(i * 0.002)
      by_id[id] = i
    end
    local ids = {}
    while #order < 5 do
      local n = core.poll(-1, ids)
      for k = 1, n do order[#order + 1] = by_id[ids[k]] end
    end
    return table.concat(order, ","))") == "1,2,3,4,5");
}

TEST_CASE("where, stat, now, builtin", "[core]") {
  LuaFixture f;
  CHECK_THAT(f.eval(kPrelude + "local w = core.where(1) return w"), Catch::Contains(":1"));
  CHECK(f.eval(kPrelude + "return core.stat('/')") == "dir");
  CHECK(f.eval(kPrelude + "return core.stat('/proc/self/statm')") == "file");
  CHECK(f.eval(kPrelude + "local r = core.stat('/no/such/path') return tostring(r)") == "nil");
  CHECK(f.eval(kPrelude + "local a = core.now() local b = core.now() return tostring(b >= a)") ==
        "true");
  CHECK(f.eval(kPrelude + "return type(core.builtin('sprites.error'))") == "function");
  CHECK(f.eval(kPrelude + "local r = core.builtin('nope') return tostring(r)") == "nil");
  CHECK(f.eval(kPrelude + "return tostring(core.rss() > 0)") == "true");
}
