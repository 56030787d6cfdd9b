// A bare lua_State with the bindings opened, for unit tests of src/bindings.
#pragma once

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include <string>

#include "bindings/bindings.hpp"
#include "bindings/lua_helpers.hpp"

struct LuaFixture {
  boost::asio::io_context io;
  lua_State* L = luaL_newstate();

  LuaFixture() {
    luaL_openlibs(L);
    spritescript::bindings::open_core(L, io);
    spritescript::bindings::open_json(L);
  }
  ~LuaFixture() { lua_close(L); }
  LuaFixture(const LuaFixture&) = delete;
  LuaFixture& operator=(const LuaFixture&) = delete;

  // Runs `code` (which may `return` one value) and returns that value as a
  // string; a Lua error becomes "error: <message>".
  std::string eval(const std::string& code) {
    if (luaL_loadstring(L, code.c_str()) || lua_pcall(L, 0, 1, 0)) {
      std::string msg = std::string("error: ") + lua_tostring(L, -1);
      lua_pop(L, 1);
      return msg;
    }
    std::string out = lua_isnil(L, -1) ? "nil" : luaL_checkstring(L, -1);
    lua_pop(L, 1);
    return out;
  }
};
