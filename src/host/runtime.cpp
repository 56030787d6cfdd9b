#include "host/runtime.hpp"

#include <boost/asio/io_context.hpp>

#include "client/config.hpp"
#include "engine/engine.hpp"

#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

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

// The config file, ~/.config/spritescript/config.lua ($XDG_CONFIG_HOME
// honoured): a Lua chunk returning {api_url=, token=, token_command=}.
// Only what the environment does not set is taken from it (docs/cli.md "Configuration and doctor").
// Returns the variables it supplies, named as the environment would name them.
std::map<std::string, std::string> config_file_settings(bool want_url, bool want_token) {
  std::map<std::string, std::string> settings;
  const char* xdg = std::getenv("XDG_CONFIG_HOME");
  const char* home = std::getenv("HOME");
  const std::string path =
      xdg && *xdg ? std::string(xdg) + "/spritescript/config.lua"
                  : std::string(home ? home : ".") + "/.config/spritescript/config.lua";
  if (::access(path.c_str(), F_OK) != 0) return settings;
  // A state of its own: the file is read before (and apart from) the script.
  std::unique_ptr<lua_State, void (*)(lua_State*)> owned(luaL_newstate(), lua_close);
  lua_State* L = owned.get();
  if (!L) throw std::runtime_error("cannot create a Lua state for " + path);
  luaL_openlibs(L);
  if (luaL_dofile(L, path.c_str()) != 0) {
    const char* message = lua_tostring(L, -1);
    throw std::runtime_error(std::string("config file: ") + (message ? message : path));
  }
  if (!lua_istable(L, -1)) {
    throw std::runtime_error(path +
                             " must return a table: return { api_url = ..., token_command = ... }");
  }
  auto field = [&](const char* name) {
    lua_getfield(L, -1, name);
    std::string value;
    if (lua_type(L, -1) == LUA_TSTRING) {
      value = lua_tostring(L, -1);
    } else if (!lua_isnil(L, -1)) {
      throw std::runtime_error(path + ": " + name + " must be a string");
    }
    lua_pop(L, 1);
    return value;
  };
  if (std::string url = field("api_url"); want_url && !url.empty())
    settings["SPRITES_API_URL"] = url;
  if (!want_token) return settings;
  if (std::string token = field("token"); !token.empty()) {
    settings["SPRITE_TOKEN"] = token;
  } else if (std::string command = field("token_command"); !command.empty()) {
    // Run only now, when a client is made: a password manager may prompt.
    std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(command.c_str(), "r"), ::pclose);
    if (!pipe) throw std::runtime_error(path + ": cannot run token_command");
    std::string out;
    char buffer[4096];
    for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe.get())) > 0;)
      out.append(buffer, n);
    const int status = ::pclose(pipe.release());
    while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
    if (status != 0 || out.empty()) {
      throw std::runtime_error(
          path + ": token_command '" + command + "' " +
          (status != 0 ? "failed (status " + std::to_string(status) + ")" : "printed nothing") +
          "; run it by hand to see why");
    }
    settings["SPRITE_TOKEN"] = out;
  }
  return settings;
}

// The client's configuration: the environment's (where main.cpp also put
// --api-url and --token), then the config file's for what it lacks, or
// with no token and no URL the local engine, found or started now (it says
// so on stderr once).
client::Config client_config() {
  client::Config config = client::config_from_environment();
  auto set = [](const char* name) {
    const char* v = std::getenv(name);
    return v && *v;
  };
  const bool env_url = set("SPRITES_API_URL") || set("SPRITE_URL");
  const bool env_token = set("SPRITE_TOKEN") || set("SPRITES_TOKEN");
  if (!env_url || !env_token) {
    auto settings = config_file_settings(!env_url, !env_token);
    if (!settings.empty()) {
      // The same reading of variables as the environment's, file values added.
      for (char** e = environ; *e; ++e) {
        std::string entry(*e);
        if (auto eq = entry.find('='); eq != std::string::npos) {
          settings.emplace(entry.substr(0, eq), entry.substr(eq + 1));
        }
      }
      config = client::config_from_environment(&settings);
    }
  }
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
  bindings::open_lineedit(L, state_->io);
  bindings::open_terminal(L, state_->io);
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
