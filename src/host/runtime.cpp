#include "host/runtime.hpp"

#include <boost/asio/io_context.hpp>

#include "client/config.hpp"
#include "engine/engine.hpp"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "bindings/bindings.hpp"
#include "bindings/lua_helpers.hpp"
#include "bindings/stdlib.hpp"

namespace spritescript::host {
namespace {

#ifdef SPRITESCRIPT_SYSTEM_ALLOCATOR
// Sanitizer builds: LuaJIT's own allocator hides the Lua heap from ASan
// (research/toolchain.md §5), so route it through malloc.
void* system_alloc(void*, void* ptr, size_t, size_t nsize) {
  if (nsize == 0) {
    std::free(ptr);
    return nullptr;
  }
  return std::realloc(ptr, nsize);
}
#endif

lua_State* new_state() {
#ifdef SPRITESCRIPT_SYSTEM_ALLOCATOR
  lua_State* L = lua_newstate(system_alloc, nullptr);
#else
  lua_State* L = luaL_newstate();
#endif
  if (!L) throw std::runtime_error("cannot create the Lua state (out of memory)");
  return L;
}

int traceback_handler(lua_State* L) {
  const char* msg = lua_tostring(L, 1);
  luaL_traceback(L, L, msg ? msg : "(error object is not a string)", 1);
  return 1;
}

// The client's configuration: the environment's, or with no token and no
// URL the local engine, found or started now (it says so on stderr once).
client::Config client_config() {
  client::Config config = client::config_from_environment();
  if (config.wants_local_engine()) {
    engine::LocalEngine local = engine::ensure_local_engine("");
    config.api_url = local.url;
    config.token = local.token;
  }
  return config;
}

}  // namespace

struct Runtime::State {
  boost::asio::io_context io{1};
  lua_State* L = nullptr;
  ~State() {
    if (L) lua_close(L);  // before io: Lua-owned objects refer to it
  }
};

Runtime::Runtime() : state_(std::make_unique<State>()) {
  lua_State* L = state_->L = new_state();
  luaL_openlibs(L);
  bindings::open_core(L, state_->io);
  bindings::open_json(L);
  bindings::open_client(L, state_->io, client_config);
}

Runtime::~Runtime() = default;

int Runtime::run(const RunOptions& options) {
  lua_State* L = state_->L;
  lua_pushcfunction(L, traceback_handler);
  const int handler = lua_gettop(L);

  auto boot = stdlib::find_builtin("spritescript.runtime");
  if (!boot || luaL_loadbuffer(L, boot->code.data(), boot->code.size(), boot->chunkname.c_str()) ||
      lua_pcall(L, 0, 1, handler)) {
    std::fprintf(stderr, "spritescript: internal error while starting: %s\n",
                 boot ? lua_tostring(L, -1) : "no built-in runtime");
    return 70;
  }
  lua_getfield(L, -1, "run");
  lua_createtable(L, 0, 4);
  if (options.file) {
    lua::push(L, *options.file);
    lua_setfield(L, -2, "file");
  }
  if (options.module) {
    lua::push(L, *options.module);
    lua_setfield(L, -2, "module");
  }
  lua_pushboolean(L, options.trust);
  lua_setfield(L, -2, "trust");
  if (options.code) {
    lua::push(L, *options.code);
    lua_setfield(L, -2, "code");
  }
  lua_createtable(L, static_cast<int>(options.args.size()), 0);
  for (size_t i = 0; i < options.args.size(); ++i) {
    lua::push(L, options.args[i]);
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  lua_setfield(L, -2, "args");
  lua_pushboolean(L, options.verbose);
  lua_setfield(L, -2, "verbose");

  if (lua_pcall(L, 1, 1, handler)) {
    std::fprintf(stderr, "spritescript: internal error: %s\n", lua_tostring(L, -1));
    return 70;
  }
  int code = static_cast<int>(lua_tointeger(L, -1));
  lua_settop(L, 0);
  std::fflush(stdout);
  return code;
}

}  // namespace spritescript::host
