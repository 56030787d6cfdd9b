// Small helpers for the raw Lua C API: checked userdata, the exception
// boundary, and stack guards. Deliberately tiny: no binding framework.
#pragma once

#include <lua.hpp>

#include <exception>
#include <new>
#include <string>
#include <string_view>
#include <utility>

namespace spritescript::lua {

inline void push(lua_State* L, std::string_view s) {
  lua_pushlstring(L, s.data(), s.size());
}

inline std::string_view check_string(lua_State* L, int idx) {
  size_t len = 0;
  const char* s = luaL_checklstring(L, idx, &len);
  return {s, len};
}

// Raises a Lua error from C++ with a message (never returns).
[[noreturn]] inline void raise(lua_State* L, std::string_view message) {
  push(L, message);
  lua_error(L);
  __builtin_unreachable();
}

// A C++ object living in a full userdata, with a metatable named by T::kTypeName.
template <class T, class... Args>
T* new_userdata(lua_State* L, Args&&... args) {
  void* mem = lua_newuserdata(L, sizeof(T));
  T* obj = new (mem) T(std::forward<Args>(args)...);
  luaL_getmetatable(L, T::kTypeName);
  lua_setmetatable(L, -2);
  return obj;
}

template <class T>
T* check_userdata(lua_State* L, int idx) {
  return static_cast<T*>(luaL_checkudata(L, idx, T::kTypeName));
}

template <class T>
int gc_userdata(lua_State* L) {
  check_userdata<T>(L, 1)->~T();
  return 0;
}

// The binding boundary: every lua_CFunction we register goes through this, so
// no C++ exception ever unwinds into Lua as the opaque "C++ exception".
//
// Rule: raise Lua errors (luaL_error, luaL_check*) only where no C++ object
// with a destructor is alive; below that, throw a C++ exception and let
// guarded() turn it into a Lua error. A Lua error unwinding through a frame
// that owns a Boost.JSON parser aborted the process in testing.
template <lua_CFunction F>
int guarded(lua_State* L) {
  // The message is copied out of the catch block before lua_error unwinds.
  std::string message;
  try {
    return F(L);
  } catch (const std::bad_alloc&) {
    message = "out of memory";
  } catch (const std::exception& e) {
    message = e.what();
  }
  push(L, message);
  return lua_error(L);
}

// Debug-build check that a function leaves the stack as it found it.
class StackGuard {
 public:
  explicit StackGuard(lua_State* L, int expected_delta = 0)
      : L_(L), top_(lua_gettop(L) + expected_delta) {}
  ~StackGuard() {  // NOLINT(modernize-use-equals-default): empty only in release builds
#ifndef NDEBUG
    if (lua_gettop(L_) != top_ && !std::uncaught_exceptions()) std::terminate();
#endif
  }
  StackGuard(const StackGuard&) = delete;
  StackGuard& operator=(const StackGuard&) = delete;

 private:
  lua_State* L_;
  int top_;
};

}  // namespace spritescript::lua
