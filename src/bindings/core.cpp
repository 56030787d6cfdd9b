// `spritescript.core`: the event loop as the Lua scheduler sees it.
//
// The scheduler itself is Lua (lua/stdlib/sprites/task.lua); this file gives
// it the primitives it cannot write in Lua: block in the Asio loop until some
// operation finishes (poll), operations with ids (timers now; the client's
// requests later), a monotonic clock, Ctrl-C delivery, and built-in module
// lookup. See docs/architecture.md, "The scheduler".
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <string>

#include "bindings/bindings.hpp"
#include "bindings/builtin_scripts.hpp"
#include "bindings/lua_helpers.hpp"
#include "bindings/op.hpp"
#include "bindings/stdlib.hpp"

namespace asio = boost::asio;

namespace spritescript::bindings {
namespace {

constexpr const char* kInterruptErrorKey = "spritescript.interrupt_error";
constexpr const char* kLoopKey = "spritescript.loop.instance";

// ---- Ctrl-C --------------------------------------------------------------
// The first SIGINT is delivered two ways: the wake pipe ends a blocking
// poll() (tasks are waiting: the scheduler cancels them), and a count hook
// raises an `interrupted` error in Lua code that is spinning without waiting.
// The second SIGINT exits at once.
volatile std::sig_atomic_t g_interrupts = 0;
lua_State* g_main_state = nullptr;
int g_wake_pipe[2] = {-1, -1};

bool in_stdlib_code(lua_State* L, lua_Debug* ar) {
  // Interrupting the scheduler's own bookkeeping half-way could corrupt it;
  // wait until the hook fires in user code.
  if (!lua_getinfo(L, "S", ar)) return false;
  // Built-in chunks are named "@stdlib/...", or carry their path under
  // lua/stdlib when SPRITESCRIPT_STDLIB_DIR points at the source tree.
  return std::strncmp(ar->source, "@stdlib/", 8) == 0 ||
         std::strstr(ar->source, "/lua/stdlib/") != nullptr || ar->what[0] == 'C';
}

void interrupt_hook(lua_State* L, lua_Debug* ar) {
  if (L == g_main_state) return;  // the scheduler loop: it checks poll() itself
  if (in_stdlib_code(L, ar)) return;
  lua_sethook(L, nullptr, 0, 0);
  lua_getfield(L, LUA_REGISTRYINDEX, kInterruptErrorKey);
  if (lua_isnil(L, -1)) lua_pushliteral(L, "interrupted");
  lua_error(L);
}

void on_sigint(int) {
  g_interrupts = g_interrupts + 1;
  if (g_interrupts >= 2) {
    static const char msg[] = "\nspritescript: interrupted twice, exiting now\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(130);
  }
  if (g_main_state) {
    lua_sethook(g_main_state, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  }
  if (g_wake_pipe[1] >= 0) (void)!::write(g_wake_pipe[1], "!", 1);
}

void install_sigint(lua_State* L) {
  g_main_state = L;
  if (g_wake_pipe[0] < 0 && ::pipe2(g_wake_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
}

// ---- the loop context ------------------------------------------------------
struct Loop {
  static constexpr const char* kTypeName = "spritescript.loop";
  explicit Loop(asio::io_context& io) : io(io), wake(io, ::dup(g_wake_pipe[0])) { arm_wake(); }

  void arm_wake() {
    wake.async_read_some(asio::buffer(wake_buf), [this](boost::system::error_code ec, size_t) {
      if (!ec) arm_wake();
    });
  }

  asio::io_context& io;
  std::shared_ptr<Completions> completions = std::make_shared<Completions>();
  asio::posix::stream_descriptor wake;  // keeps the loop alive and wakes it on Ctrl-C
  char wake_buf[16]{};
  int interrupts_seen = 0;
};

Loop& loop_of(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kLoopKey);
  auto* loop = static_cast<Loop*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return *loop;
}

}  // namespace

std::shared_ptr<Completions> completions_of(lua_State* L) {
  return loop_of(L).completions;
}

namespace {

double seconds_since_start() {
  static const auto start = std::chrono::steady_clock::now();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// core.poll(timeout, ids) -> n, interrupted
// Runs the Asio loop: timeout 0 does not block, a negative or nil timeout
// blocks until something completes, otherwise blocks at most `timeout`
// seconds. Fills ids[1..n] with the ids of finished ops.
int l_poll(lua_State* L) {
  double timeout = luaL_optnumber(L, 1, -1);
  luaL_checktype(L, 2, LUA_TTABLE);
  Loop& loop = loop_of(L);
  auto& done = loop.completions->ids;
  auto interrupted = [&] { return g_interrupts != loop.interrupts_seen; };

  loop.io.restart();
  if (timeout == 0) {
    loop.io.poll();
  } else {
    const bool forever = timeout < 0 || timeout > 1e9;
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(forever ? 0 : timeout));
    while (done.empty() && !interrupted()) {
      if (forever) {
        loop.io.run_one();
      } else if (loop.io.run_one_until(deadline) == 0 ||
                 std::chrono::steady_clock::now() >= deadline) {
        break;
      }
      loop.io.restart();
    }
    loop.io.poll();
  }

  const int n = static_cast<int>(done.size());
  for (int i = 0; i < n; ++i) {
    lua_pushnumber(L, static_cast<lua_Number>(done[i]));
    lua_rawseti(L, 2, i + 1);
  }
  done.clear();
  lua_pushinteger(L, n);
  lua_pushboolean(L, interrupted());
  return 2;
}

// core.take_interrupt() -> true when a Ctrl-C arrived since the last call.
// Also disarms the interrupt hook: from here on the scheduler cancels tasks
// at their wait points and their cleanup code must not be interrupted.
int l_take_interrupt(lua_State* L) {
  Loop& loop = loop_of(L);
  const bool fresh = g_interrupts != loop.interrupts_seen;
  loop.interrupts_seen = g_interrupts;
  if (fresh) lua_sethook(g_main_state, nullptr, 0, 0);
  lua_pushboolean(L, fresh);
  return 1;
}

// core.set_interrupt_error(err): the value the hook raises in spinning code.
int l_set_interrupt_error(lua_State* L) {
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, kInterruptErrorKey);
  return 0;
}

// ---- ops -----------------------------------------------------------------
struct OpHandle {
  static constexpr const char* kTypeName = "spritescript.op";
  std::shared_ptr<Op> op;
};

Op& check_op(lua_State* L) {
  return *lua::check_userdata<OpHandle>(L, 1)->op;
}

int l_op_id(lua_State* L) {
  lua_pushnumber(L, static_cast<lua_Number>(check_op(L).id()));
  return 1;
}
int l_op_cancel(lua_State* L) {
  Op& op = check_op(L);
  if (!op.done()) op.cancel();
  return 0;
}
int l_op_done(lua_State* L) {
  lua_pushboolean(L, check_op(L).done());
  return 1;
}
int l_op_result(lua_State* L) {
  Op& op = check_op(L);
  if (!op.done())
    return luaL_error(L, "op:result(): operation %f is still running", double(op.id()));
  return op.push_result(L);
}
int l_op_tostring(lua_State* L) {
  Op& op = check_op(L);
  lua_pushfstring(L, "<op %d %s>", int(op.id()), op.done() ? "done" : "pending");
  return 1;
}

class TimerOp final : public Op {
 public:
  TimerOp(std::shared_ptr<Completions> c, asio::io_context& io) : Op(std::move(c)), timer_(io) {}

  void start(double seconds) {
    timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(seconds)));
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      auto* t = static_cast<TimerOp*>(self.get());
      t->expired_ = !ec;
      t->complete();
    });
  }
  void cancel() override { timer_.cancel(); }
  int push_result(lua_State* L) override {
    lua_pushboolean(L, expired_);
    return 1;
  }

 private:
  asio::steady_timer timer_;
  bool expired_ = false;
};

// core.timer(seconds) -> op, id. The op completes with `true` when the time
// has passed, `false` when cancelled first.
int l_timer(lua_State* L) {
  double seconds = luaL_checknumber(L, 1);
  if (!(seconds >= 0)) seconds = 0;
  if (seconds > 1e9) seconds = 1e9;  // "forever" without overflowing the clock
  Loop& loop = loop_of(L);
  auto op = std::make_shared<TimerOp>(loop.completions, loop.io);
  op->start(seconds);
  push_op(L, op);
  lua_pushnumber(L, static_cast<lua_Number>(op->id()));
  return 2;
}

// ---- time, places, files ---------------------------------------------------
int l_now(lua_State* L) {
  lua_pushnumber(L, seconds_since_start());
  return 1;
}

// core.where(level) -> "file:line" of the function `level` frames up.
int l_where(lua_State* L) {
  lua_Debug ar;
  if (!lua_getstack(L, static_cast<int>(luaL_optinteger(L, 1, 1)), &ar) ||
      !lua_getinfo(L, "Sl", &ar)) {
    lua_pushliteral(L, "?");
    return 1;
  }
  if (ar.currentline > 0) {
    lua_pushfstring(L, "%s:%d", ar.short_src, ar.currentline);
  } else {
    lua_pushstring(L, ar.short_src);
  }
  return 1;
}

// core.builtin(name) -> chunk | nil | nil, syntax_error
int l_builtin(lua_State* L) {
  auto source = stdlib::find_builtin(lua::check_string(L, 1));
  if (!source) return 0;
  if (luaL_loadbuffer(L, source->code.data(), source->code.size(), source->chunkname.c_str()) !=
      0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return 1;
}

// core.builtin_names() -> array of every built-in module name
int l_builtin_names(lua_State* L) {
  lua_createtable(L, static_cast<int>(stdlib::kBuiltinModuleCount), 0);
  for (std::size_t i = 0; i < stdlib::kBuiltinModuleCount; ++i) {
    lua::push(L, stdlib::kBuiltinModules[i].name);
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  return 1;
}

// core.builtin_scripts() -> {name = source text} of the built-in scripts
int l_builtin_scripts(lua_State* L) {
  lua_newtable(L);
  for (const BuiltinScript* s = kBuiltinScripts; s->name; ++s) {
    lua_pushlstring(L, reinterpret_cast<const char*>(s->text), s->size);
    lua_setfield(L, -2, s->name);
  }
  return 1;
}

// core.stat(path) -> "file" | "dir" | "other" | nil
int l_stat(lua_State* L) {
  struct stat st {};
  if (::stat(luaL_checkstring(L, 1), &st) != 0) return 0;
  lua_pushstring(L, S_ISREG(st.st_mode) ? "file" : S_ISDIR(st.st_mode) ? "dir" : "other");
  return 1;
}

int l_getcwd(lua_State* L) {
  char buf[4096];
  if (!::getcwd(buf, sizeof buf)) return 0;
  lua_pushstring(L, buf);
  return 1;
}

// core.rss() -> resident set size in bytes (for benchmarks and leak checks)
int l_rss(lua_State* L) {
  std::ifstream statm("/proc/self/statm");
  long pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  lua_pushnumber(L, double(pages_resident) * double(::sysconf(_SC_PAGESIZE)));
  return 1;
}

int l_isatty(lua_State* L) {
  lua_pushboolean(L, ::isatty(static_cast<int>(luaL_checkinteger(L, 1))));
  return 1;
}

// core.sha256(data) -> lowercase hex digest (trusted scripts are keyed by it)
int l_sha256(lua_State* L) {
  std::size_t size = 0;
  const char* data = luaL_checklstring(L, 1, &size);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  if (EVP_Digest(data, size, digest, &digest_size, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("sha256: OpenSSL failed");
  }
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < digest_size; ++i) {
    hex += kHex[digest[i] >> 4];
    hex += kHex[digest[i] & 15];
  }
  lua::push(L, hex);
  return 1;
}

// core.realpath(path) -> absolute path with symlinks resolved, or nil, message
int l_realpath(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  char* resolved = ::realpath(path, nullptr);
  if (!resolved) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, std::strerror(errno));
    return 2;
  }
  lua_pushstring(L, resolved);
  std::free(resolved);
  return 1;
}

}  // namespace

void push_op(lua_State* L, std::shared_ptr<Op> op) {
  lua::new_userdata<OpHandle>(L, OpHandle{std::move(op)});
}

void open_core(lua_State* L, asio::io_context& io) {
  lua::StackGuard guard(L);
  install_sigint(L);

  luaL_newmetatable(L, OpHandle::kTypeName);
  static const luaL_Reg op_methods[] = {{"id", lua::guarded<l_op_id>},
                                        {"cancel", lua::guarded<l_op_cancel>},
                                        {"done", lua::guarded<l_op_done>},
                                        {"result", lua::guarded<l_op_result>},
                                        {nullptr, nullptr}};
  lua_newtable(L);
  luaL_register(L, nullptr, op_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, lua::gc_userdata<OpHandle>);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, l_op_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pop(L, 1);

  luaL_newmetatable(L, Loop::kTypeName);
  lua_pushcfunction(L, lua::gc_userdata<Loop>);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua::new_userdata<Loop>(L, io);
  lua_setfield(L, LUA_REGISTRYINDEX, kLoopKey);

  static const luaL_Reg functions[] = {{"poll", lua::guarded<l_poll>},
                                       {"take_interrupt", lua::guarded<l_take_interrupt>},
                                       {"set_interrupt_error", l_set_interrupt_error},
                                       {"timer", lua::guarded<l_timer>},
                                       {"now", l_now},
                                       {"where", l_where},
                                       {"builtin", lua::guarded<l_builtin>},
                                       {"builtin_names", l_builtin_names},
                                       {"builtin_scripts", l_builtin_scripts},
                                       {"stat", l_stat},
                                       {"getcwd", l_getcwd},
                                       {"rss", lua::guarded<l_rss>},
                                       {"isatty", l_isatty},
                                       {"sha256", lua::guarded<l_sha256>},
                                       {"realpath", l_realpath},
                                       {nullptr, nullptr}};
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_newtable(L);
  luaL_register(L, nullptr, functions);
  lua_setfield(L, -2, "spritescript.core");
  lua_pop(L, 1);
}

}  // namespace spritescript::bindings
