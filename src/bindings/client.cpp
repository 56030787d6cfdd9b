// `spritescript.client`: the Sprites client (src/client) as Lua ops. Each
// call starts a client coroutine on the loop and returns `op, id` at once;
// the scheduler (sprites/task.lua) waits on the op, and op:result() gives
// the value, or `nil, {kind=, message=, status=}` for a client::Error. The
// Lua half (lua/stdlib/sprites/api.lua) turns those into sprites.error
// objects and the objects scripts use (sprites, processes, checkpoints).
//
// Cancelling an op (a timeout scope, a failing sibling, Ctrl-C) emits a
// terminal cancellation on its coroutine: the client's pending I/O ends
// with ErrorKind::cancelled.
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <fnmatch.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bindings/bindings.hpp"
#include "bindings/lua_helpers.hpp"
#include "bindings/op.hpp"
#include "client/client.hpp"
#include "proto/values.hpp"

extern "C" {
#include <lauxlib.h>
#include <lua.h>
}

namespace spritescript::bindings {
namespace {

namespace asio = boost::asio;
using client::Client;
using client::Error;
using client::ErrorKind;

constexpr const char* kClientKey = "spritescript.client.state";

// What an op hands back to Lua, built when the operation finishes.
using Pusher = std::function<int(lua_State*)>;

struct Forward;
void close_forward(Forward& forward);

struct ClientState {
  static constexpr const char* kTypeName = "spritescript.client.state";
  ClientState(asio::io_context& io, ClientConfigSource source)
      : io(io), source(std::move(source)) {}
  ~ClientState();
  ClientState(const ClientState&) = delete;
  ClientState& operator=(const ClientState&) = delete;
  asio::io_context& io;
  ClientConfigSource source;
  std::shared_ptr<Client> client;  // made at the first call
  // Port forwards live until closed or until the Lua state goes (not when
  // their Lua object is collected: a kept forward serves on).
  std::vector<std::weak_ptr<Forward>> forwards;
};

ClientState& state_of(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kClientKey);
  auto* state = static_cast<ClientState*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return *state;
}

// The client, made on first use: finding (or starting) the local engine is
// done then, not at every script's start.
std::shared_ptr<Client> client_of(lua_State* L) {
  ClientState& state = state_of(L);
  if (!state.client) {
    client::Config config = state.source();
    state.client = std::make_shared<Client>(state.io.get_executor(), std::move(config));
  }
  return state.client;
}

// ---- the generic op ---------------------------------------------------------

class CallOp final : public Op {
 public:
  explicit CallOp(std::shared_ptr<Completions> completions) : Op(std::move(completions)) {}

  void start(asio::io_context& io, asio::awaitable<Pusher> work) {
    auto self = std::static_pointer_cast<CallOp>(shared_from_this());
    asio::co_spawn(io, std::move(work),
                   asio::bind_cancellation_slot(
                       signal_.slot(), [self](const std::exception_ptr& error, Pusher pusher) {
                         self->finish(error, std::move(pusher));
                       }));
  }
  void cancel() override {
    if (!done()) signal_.emit(asio::cancellation_type::terminal);
  }
  // The scheduler reads a result once; the value is released then, not when
  // the op is garbage collected (a stream's 64 KiB pieces would pile up
  // until the next GC cycle).
  int push_result(lua_State* L) override {
    if (!failed_) {
      if (!pusher_) return 0;
      Pusher pusher = std::move(pusher_);
      pusher_ = nullptr;
      return pusher(L);
    }
    lua_pushnil(L);
    lua_createtable(L, 0, 4);
    lua::push(L, kind_);
    lua_setfield(L, -2, "kind");
    lua::push(L, message_);
    lua_setfield(L, -2, "message");
    if (status_ > 0) {
      lua_pushinteger(L, status_);
      lua_setfield(L, -2, "status");
    }
    if (retry_after_ > 0) {
      lua_pushnumber(L, retry_after_);
      lua_setfield(L, -2, "retry_after");
    }
    if (!code_.empty()) {
      lua::push(L, code_);
      lua_setfield(L, -2, "code");
    }
    return 2;
  }

 private:
  void finish(const std::exception_ptr& error, Pusher pusher) {
    if (error) {
      failed_ = true;
      try {
        std::rethrow_exception(error);
      } catch (const Error& e) {
        kind_ = std::string(client::kind_name(e.kind()));
        message_ = e.what();
        status_ = e.status();
        code_ = e.code();
        if (e.retry_after()) retry_after_ = static_cast<double>(e.retry_after()->count());
      } catch (const std::exception& e) {
        kind_ = "error";
        message_ = e.what();
      } catch (...) {
        kind_ = "error";
        message_ = "unknown failure";
      }
    } else {
      pusher_ = std::move(pusher);
    }
    complete();
  }

  asio::cancellation_signal signal_;
  Pusher pusher_;
  bool failed_ = false;
  std::string kind_, message_, code_;
  int status_ = 0;
  double retry_after_ = 0;
};

// Starts `work` as an op and pushes `op, id`.
int start_op(lua_State* L, asio::awaitable<Pusher> work) {
  auto op = std::make_shared<CallOp>(completions_of(L));
  op->start(state_of(L).io, std::move(work));
  push_op(L, op);
  lua_pushnumber(L, static_cast<lua_Number>(op->id()));
  return 2;
}

// ---- Lua <-> C++ values -----------------------------------------------------

void set_string(lua_State* L, const char* key, const std::string& value) {
  lua::push(L, value);
  lua_setfield(L, -2, key);
}

void push_strings(lua_State* L, const std::vector<std::string>& items) {
  lua_createtable(L, static_cast<int>(items.size()), 0);
  for (std::size_t i = 0; i < items.size(); ++i) {
    lua::push(L, items[i]);
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
}

void push_sprite(lua_State* L, const proto::Sprite& s) {
  lua_createtable(L, 0, 10);
  set_string(L, "name", s.name);
  set_string(L, "id", s.id);
  set_string(L, "organization", s.organization);
  set_string(L, "status", s.status);
  set_string(L, "url", s.url);
  set_string(L, "url_auth", s.url_settings.auth);
  set_string(L, "created_at", s.created_at);
  set_string(L, "updated_at", s.updated_at);
  if (!s.last_running_at.empty()) set_string(L, "last_running_at", s.last_running_at);
  push_strings(L, s.labels);
  lua_setfield(L, -2, "labels");
}

void push_checkpoint(lua_State* L, const proto::Checkpoint& c) {
  lua_createtable(L, 0, 8);
  set_string(L, "id", c.id);
  set_string(L, "create_time", c.create_time);
  set_string(L, "comment", c.comment);
  set_string(L, "source_id", c.source_id);
  lua_pushboolean(L, c.is_auto);
  lua_setfield(L, -2, "is_auto");
  lua_pushboolean(L, c.current);
  lua_setfield(L, -2, "current");
  push_strings(L, c.history);
  lua_setfield(L, -2, "history");
}

void push_event(lua_State* L, const proto::ProgressEvent& e) {
  lua_createtable(L, 0, 4);
  set_string(L, "type", e.type);
  set_string(L, "message", e.message);
  if (e.exit_code) {
    lua_pushinteger(L, *e.exit_code);
    lua_setfield(L, -2, "exit_code");
  }
  if (e.timestamp) {
    lua_pushnumber(L, static_cast<lua_Number>(*e.timestamp));
    lua_setfield(L, -2, "timestamp");
  }
  set_string(L, "json", e.json);
}

// Reads t[key] as a string, "" when absent; raises on another type.
std::string opt_string(lua_State* L, int table, const char* key) {
  lua_getfield(L, table, key);
  std::string out;
  if (lua_isstring(L, -1)) {
    out = lua_tostring(L, -1);
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    throw std::runtime_error(std::string("option ") + key + " must be a string");
  }
  lua_pop(L, 1);
  return out;
}

std::optional<double> opt_number(lua_State* L, int table, const char* key) {
  lua_getfield(L, table, key);
  std::optional<double> out;
  if (lua_type(L, -1) == LUA_TNUMBER) {
    out = lua_tonumber(L, -1);
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    throw std::runtime_error(std::string("option ") + key + " must be a number");
  }
  lua_pop(L, 1);
  return out;
}

bool opt_bool(lua_State* L, int table, const char* key) {
  lua_getfield(L, table, key);
  const bool out = lua_toboolean(L, -1) != 0;
  lua_pop(L, 1);
  return out;
}

// An array of strings at stack index `idx`.
std::vector<std::string> string_array(lua_State* L, int idx, const char* what) {
  std::vector<std::string> out;
  if (!lua_istable(L, idx)) throw std::runtime_error(std::string(what) + " must be a table");
  const int n = static_cast<int>(lua_objlen(L, idx));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, idx, i);
    if (!lua_isstring(L, -1)) {
      lua_pop(L, 1);
      throw std::runtime_error(std::string(what) + " must hold only strings");
    }
    out.emplace_back(lua_tostring(L, -1));
    lua_pop(L, 1);
  }
  return out;
}

// {KEY = "value", ...} at t[key].
std::vector<std::pair<std::string, std::string>> opt_env(lua_State* L, int table, const char* key) {
  std::vector<std::pair<std::string, std::string>> out;
  lua_getfield(L, table, key);
  if (lua_istable(L, -1)) {
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
      if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1)) {
        lua_pop(L, 3);
        throw std::runtime_error("env must map names to strings");
      }
      out.emplace_back(lua_tostring(L, -2), lua_tostring(L, -1));
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    throw std::runtime_error("env must be a table");
  }
  lua_pop(L, 1);
  return out;
}

using Millis = std::chrono::milliseconds;

Millis millis(double seconds) {
  return Millis(static_cast<std::int64_t>(seconds * 1000.0));
}

// ---- sprites -----------------------------------------------------------------

asio::awaitable<Pusher> create_sprite(std::shared_ptr<Client> c, proto::CreateSpriteRequest r) {
  proto::Sprite s = co_await c->create_sprite(r);
  co_return [s](lua_State* L) {
    push_sprite(L, s);
    return 1;
  };
}

// client.create(name, {labels=, url_auth=, wait_for_capacity=})
int l_create(lua_State* L) {
  proto::CreateSpriteRequest r;
  r.name = std::string(lua::check_string(L, 1));
  if (lua_istable(L, 2)) {
    lua_getfield(L, 2, "labels");
    if (!lua_isnil(L, -1)) r.labels = string_array(L, lua_gettop(L), "labels");
    lua_pop(L, 1);
    std::string auth = opt_string(L, 2, "url_auth");
    if (!auth.empty()) r.url_settings = proto::UrlSettings{auth, ""};
    r.wait_for_capacity = opt_bool(L, 2, "wait_for_capacity");
  }
  return start_op(L, create_sprite(client_of(L), std::move(r)));
}

asio::awaitable<Pusher> get_sprite(std::shared_ptr<Client> c, std::string name) {
  proto::Sprite s = co_await c->get_sprite(name);
  co_return [s](lua_State* L) {
    push_sprite(L, s);
    return 1;
  };
}

int l_get(lua_State* L) {
  return start_op(L, get_sprite(client_of(L), std::string(lua::check_string(L, 1))));
}

asio::awaitable<Pusher> list_sprites(std::shared_ptr<Client> c, std::string prefix) {
  std::vector<proto::Sprite> all = co_await c->list_all_sprites(prefix);
  co_return [all](lua_State* L) {
    lua_createtable(L, static_cast<int>(all.size()), 0);
    for (std::size_t i = 0; i < all.size(); ++i) {
      push_sprite(L, all[i]);
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    return 1;
  };
}

// client.list(prefix) -> every page
int l_list(lua_State* L) {
  return start_op(L, list_sprites(client_of(L), std::string(luaL_optstring(L, 1, ""))));
}

asio::awaitable<Pusher> update_sprite(std::shared_ptr<Client> c, std::string name,
                                      proto::UpdateSpriteRequest r) {
  proto::Sprite s = co_await c->update_sprite(name, r);
  co_return [s](lua_State* L) {
    push_sprite(L, s);
    return 1;
  };
}

// client.update(name, {url_auth=, labels=})
int l_update(lua_State* L) {
  std::string name(lua::check_string(L, 1));
  luaL_checktype(L, 2, LUA_TTABLE);
  proto::UpdateSpriteRequest r;
  std::string auth = opt_string(L, 2, "url_auth");
  if (!auth.empty()) r.url_settings = proto::UrlSettings{auth, ""};
  lua_getfield(L, 2, "labels");
  if (!lua_isnil(L, -1)) r.labels = string_array(L, lua_gettop(L), "labels");
  lua_pop(L, 1);
  return start_op(L, update_sprite(client_of(L), std::move(name), std::move(r)));
}

// Ops with no value: `true`.
Pusher nothing() {
  return [](lua_State* L) {
    lua_pushboolean(L, 1);
    return 1;
  };
}

asio::awaitable<Pusher> delete_sprite(std::shared_ptr<Client> c, std::string name) {
  co_await c->delete_sprite(name);
  co_return nothing();
}

int l_delete(lua_State* L) {
  return start_op(L, delete_sprite(client_of(L), std::string(lua::check_string(L, 1))));
}

asio::awaitable<Pusher> text_call(std::shared_ptr<Client> c, std::string name, bool restart) {
  std::string text;
  if (restart) {
    text = co_await c->restart_sprite(name);
  } else {
    text = co_await c->check_sprite(name);
  }
  co_return [text](lua_State* L) {
    lua::push(L, text);
    return 1;
  };
}

int l_restart(lua_State* L) {
  return start_op(L, text_call(client_of(L), std::string(lua::check_string(L, 1)), true));
}

int l_check(lua_State* L) {
  return start_op(L, text_call(client_of(L), std::string(lua::check_string(L, 1)), false));
}

// ---- exec ----------------------------------------------------------------------

struct RunLimits {
  std::optional<Millis> timeout;
  Millis grace{5000};
};

struct RunOutcome {
  int code = -1;
  std::string out, err;
  bool timed_out = false;
  double seconds = 0;
  std::string session;
};

// Shared by the reader, the stdin feeder and the timeout watchdog, so none
// can outlive the process it uses.
struct RunState {
  std::unique_ptr<client::ExecProcess> process;
  std::string sprite;  // for ending the session through the REST endpoint
  bool exited = false;
  bool timed_out = false;
};

asio::awaitable<void> feed_stdin(std::shared_ptr<RunState> state, std::string data) {
  try {
    co_await state->process->write(data);
    co_await state->process->close_stdin();
  } catch (const std::exception&) {
    // The command ended or the connection broke: the reader reports it.
  }
}

// TERM at the deadline, KILL after the grace period, through the session
// endpoint (its own connection; the exec socket is left to the reader).
asio::awaitable<void> watchdog(std::shared_ptr<RunState> state, std::shared_ptr<Client> c,
                               std::string name, std::string session,
                               std::shared_ptr<asio::steady_timer> timer, Millis grace) {
  auto [ec] = co_await timer->async_wait(asio::as_tuple(asio::use_awaitable));
  if (ec || state->exited) co_return;
  state->timed_out = true;
  try {
    auto events = co_await c->kill_session(
        name, session, "TERM", std::chrono::duration_cast<std::chrono::nanoseconds>(grace));
    while (co_await events->next()) {
    }
  } catch (const std::exception&) {
    // Already gone: the reader sees the exit.
  }
}

asio::awaitable<RunOutcome> run_command(std::shared_ptr<Client> c, std::string name,
                                        proto::ExecOptions options, std::string stdin_data,
                                        RunLimits limits) {
  const auto started = std::chrono::steady_clock::now();
  if (stdin_data.empty() && !options.tty) options.stdin = false;
  auto state = std::make_shared<RunState>();
  state->process = co_await c->exec(name, options);
  state->sprite = name;
  RunOutcome outcome;
  outcome.session = state->process->session().session_id;
  auto executor = co_await asio::this_coro::executor;
  if (!stdin_data.empty()) {
    state->process->set_resumable(false);
    asio::co_spawn(executor, feed_stdin(state, std::move(stdin_data)), asio::detached);
  }
  std::shared_ptr<asio::steady_timer> deadline;
  if (limits.timeout) {
    deadline = std::make_shared<asio::steady_timer>(executor, *limits.timeout);
    asio::co_spawn(executor, watchdog(state, c, name, outcome.session, deadline, limits.grace),
                   asio::detached);
  }
  std::exception_ptr failure;
  try {
    for (;;) {
      client::ExecEvent event = co_await state->process->next();
      if (event.type == client::ExecEvent::Type::exit) {
        outcome.code = event.exit_code;
        break;
      }
      if (event.type != client::ExecEvent::Type::output) continue;
      (event.stream == proto::StreamId::stderr_data ? outcome.err : outcome.out) += event.data;
    }
  } catch (...) {
    failure = std::current_exception();
  }
  state->exited = true;
  if (deadline) deadline->cancel();
  if (failure) {
    state->process->abort();  // a pending stdin write fails; the feeder ends
    bool cancelled = false;
    try {
      std::rethrow_exception(failure);
    } catch (const Error& e) {
      cancelled = e.kind() == ErrorKind::cancelled;
    } catch (...) {
    }
    // A cancelled run must not leave its command running in the sprite.
    if (cancelled && !outcome.session.empty()) {
      auto none = std::make_shared<asio::steady_timer>(executor, Millis(0));
      asio::co_spawn(
          executor,
          watchdog(std::make_shared<RunState>(), c, name, outcome.session, none, Millis(2000)),
          asio::detached);
    }
    std::rethrow_exception(failure);
  }
  outcome.timed_out = state->timed_out;
  outcome.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  co_return outcome;
}

asio::awaitable<Pusher> run_op(std::shared_ptr<Client> c, std::string name,
                               proto::ExecOptions options, std::string stdin_data,
                               RunLimits limits) {
  RunOutcome r = co_await run_command(std::move(c), std::move(name), std::move(options),
                                      std::move(stdin_data), limits);
  co_return [r](lua_State* L) {
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, r.code);
    lua_setfield(L, -2, "code");
    lua_pushboolean(L, r.code == 0 && !r.timed_out);
    lua_setfield(L, -2, "ok");
    set_string(L, "stdout", r.out);
    set_string(L, "stderr", r.err);
    lua_pushboolean(L, r.timed_out);
    lua_setfield(L, -2, "timed_out");
    lua_pushnumber(L, r.seconds);
    lua_setfield(L, -2, "duration");
    set_string(L, "session_id", r.session);
    return 1;
  };
}

// Reads {dir=, env=, tty=, cols=, rows=} into `options`.
void exec_options(lua_State* L, int table, proto::ExecOptions& options) {
  if (!lua_istable(L, table)) return;
  options.dir = opt_string(L, table, "dir");
  options.env = opt_env(L, table, "env");
  options.tty = opt_bool(L, table, "tty");
  if (auto cols = opt_number(L, table, "cols")) options.cols = static_cast<int>(*cols);
  if (auto rows = opt_number(L, table, "rows")) options.rows = static_cast<int>(*rows);
}

// client.run(name, argv, {dir=, env=, tty=, stdin=, timeout=, grace=})
int l_run(lua_State* L) {
  std::string name(lua::check_string(L, 1));
  proto::ExecOptions options;
  options.argv = string_array(L, 2, "the command");
  if (options.argv.empty()) throw std::runtime_error("the command is empty");
  exec_options(L, 3, options);
  std::string stdin_data;
  RunLimits limits;
  if (lua_istable(L, 3)) {
    stdin_data = opt_string(L, 3, "stdin");
    if (auto t = opt_number(L, 3, "timeout"); t && *t > 0) limits.timeout = millis(*t);
    if (auto g = opt_number(L, 3, "grace"); g && *g >= 0) limits.grace = millis(*g);
  }
  return start_op(
      L, run_op(client_of(L), std::move(name), std::move(options), std::move(stdin_data), limits));
}

// A streaming process: the object behind s:spawn().
struct Process {
  static constexpr const char* kTypeName = "spritescript.client.process";
  std::shared_ptr<Client> client;  // outlives the process
  std::shared_ptr<RunState> state;
};

Process& check_process(lua_State* L) {
  return *lua::check_userdata<Process>(L, 1);
}

asio::awaitable<Pusher> spawn_op(std::shared_ptr<Client> c, std::string name,
                                 proto::ExecOptions options) {
  auto state = std::make_shared<RunState>();
  state->process = co_await c->exec(name, options);
  state->sprite = name;
  co_return [c, state](lua_State* L) {
    lua::new_userdata<Process>(L, Process{c, state});
    return 1;
  };
}

// client.spawn(name, argv, {dir=, env=, tty=, cols=, rows=, stdin=true})
int l_spawn(lua_State* L) {
  std::string name(lua::check_string(L, 1));
  proto::ExecOptions options;
  options.argv = string_array(L, 2, "the command");
  if (options.argv.empty()) throw std::runtime_error("the command is empty");
  exec_options(L, 3, options);
  return start_op(L, spawn_op(client_of(L), std::move(name), std::move(options)));
}

asio::awaitable<Pusher> process_next(std::shared_ptr<RunState> state) {
  if (state->exited) {
    co_return [](lua_State* L) {
      lua_pushnil(L);
      return 1;
    };
  }
  client::ExecEvent event = co_await state->process->next();
  if (event.type == client::ExecEvent::Type::exit) state->exited = true;
  // Moved, not copied: a streaming read carries up to 64 KiB per event.
  co_return [event = std::move(event)](lua_State* L) {
    lua_createtable(L, 0, 3);
    switch (event.type) {
      case client::ExecEvent::Type::exit:
        set_string(L, "type", "exit");
        lua_pushinteger(L, event.exit_code);
        lua_setfield(L, -2, "code");
        break;
      case client::ExecEvent::Type::port:
        set_string(L, "type", "port");
        lua_pushinteger(L, event.port.port);
        lua_setfield(L, -2, "port");
        set_string(L, "state", event.port.opened ? "opened" : "closed");
        set_string(L, "address", event.port.address);
        break;
      case client::ExecEvent::Type::output:
        set_string(L, "type", "output");
        set_string(L, "stream", event.stream == proto::StreamId::stderr_data ? "stderr" : "stdout");
        set_string(L, "data", event.data);
        break;
    }
    return 1;
  };
}

// p:next() -> op: {type="output", stream=, data=} | {type="exit", code=} | nil after the exit
int l_process_next(lua_State* L) {
  return start_op(L, process_next(check_process(L).state));
}

asio::awaitable<Pusher> process_write(std::shared_ptr<RunState> state, std::string data,
                                      bool close) {
  if (!data.empty()) co_await state->process->write(data);
  if (close) co_await state->process->close_stdin();
  co_return nothing();
}

int l_process_write(lua_State* L) {
  Process& p = check_process(L);
  std::string data(lua::check_string(L, 2));
  p.state->process->set_resumable(false);
  return start_op(L, process_write(p.state, std::move(data), false));
}

int l_process_close_stdin(lua_State* L) {
  return start_op(L, process_write(check_process(L).state, {}, true));
}

asio::awaitable<Pusher> process_signal(std::shared_ptr<RunState> state, std::string name) {
  co_await state->process->signal(name);
  co_return nothing();
}

int l_process_signal(lua_State* L) {
  Process& p = check_process(L);
  return start_op(L, process_signal(p.state, std::string(luaL_optstring(L, 2, "TERM"))));
}

asio::awaitable<Pusher> process_resize(std::shared_ptr<RunState> state, int cols, int rows) {
  co_await state->process->resize(cols, rows);
  co_return nothing();
}

int l_process_resize(lua_State* L) {
  Process& p = check_process(L);
  const int cols = static_cast<int>(luaL_checkinteger(L, 2));
  const int rows = static_cast<int>(luaL_checkinteger(L, 3));
  return start_op(L, process_resize(p.state, cols, rows));
}

asio::awaitable<Pusher> process_detach(std::shared_ptr<RunState> state) {
  co_await state->process->detach();
  state->exited = true;
  co_return nothing();
}

int l_process_detach(lua_State* L) {
  return start_op(L, process_detach(check_process(L).state));
}

int l_process_session_id(lua_State* L) {
  lua::push(L, check_process(L).state->process->session().session_id);
  return 1;
}

// p:info() -> {session_id, command, tty, created} from the session's first message
int l_process_info(lua_State* L) {
  const proto::SessionInfo& info = check_process(L).state->process->session();
  lua_createtable(L, 0, 4);
  set_string(L, "session_id", info.session_id);
  set_string(L, "command", info.command);
  lua_pushboolean(L, info.tty);
  lua_setfield(L, -2, "tty");
  lua_pushnumber(L, static_cast<lua_Number>(info.created));
  lua_setfield(L, -2, "created");
  return 1;
}

// p:close(): drops the connection now (the scope ended; the engine keeps
// the command for max_run_after_disconnect, then ends it).
// p:close(true) also ends the command (TERM, KILL 2 s later) without
// waiting: what a task's scope does with the processes it did not detach.
int l_process_close(lua_State* L) {
  Process& p = check_process(L);
  const bool end_command = lua_toboolean(L, 2) != 0;
  if (p.state && !p.state->exited) {
    std::string session = p.state->process->session().session_id;
    p.state->process->abort();
    if (end_command && !session.empty() && !p.state->sprite.empty()) {
      asio::io_context& io = state_of(L).io;
      auto now = std::make_shared<asio::steady_timer>(io, Millis(0));
      asio::co_spawn(io,
                     watchdog(std::make_shared<RunState>(), p.client, p.state->sprite,
                              std::move(session), now, Millis(2000)),
                     asio::detached);
    }
  }
  if (p.state) p.state->exited = true;
  return 0;
}

// ---- checkpoints -----------------------------------------------------------

struct Events {
  static constexpr const char* kTypeName = "spritescript.client.events";
  std::shared_ptr<client::EventStream> stream;
};

asio::awaitable<Pusher> open_checkpoint(std::shared_ptr<Client> c, std::string name,
                                        std::string arg, bool restore) {
  std::unique_ptr<client::EventStream> events;
  if (restore) {
    events = co_await c->restore_checkpoint(name, arg);
  } else {
    events = co_await c->create_checkpoint(name, arg);
  }
  std::shared_ptr<client::EventStream> shared = std::move(events);
  co_return [shared](lua_State* L) {
    lua::new_userdata<Events>(L, Events{shared});
    return 1;
  };
}

// client.checkpoint(name, comment) -> op: events
int l_checkpoint(lua_State* L) {
  return start_op(L, open_checkpoint(client_of(L), std::string(lua::check_string(L, 1)),
                                     std::string(luaL_optstring(L, 2, "")), false));
}

// client.restore(name, id) -> op: events
int l_restore(lua_State* L) {
  return start_op(L, open_checkpoint(client_of(L), std::string(lua::check_string(L, 1)),
                                     std::string(lua::check_string(L, 2)), true));
}

asio::awaitable<Pusher> events_next(std::shared_ptr<client::EventStream> stream) {
  std::optional<proto::ProgressEvent> event = co_await stream->next();
  co_return [event](lua_State* L) {
    if (!event) {
      lua_pushnil(L);
    } else {
      push_event(L, *event);
    }
    return 1;
  };
}

// events:next() -> op: event table | nil at the end; an `error` event fails the op
int l_events_next(lua_State* L) {
  return start_op(L, events_next(lua::check_userdata<Events>(L, 1)->stream));
}

asio::awaitable<Pusher> list_checkpoints(std::shared_ptr<Client> c, std::string name,
                                         bool include_auto) {
  std::vector<proto::Checkpoint> all = co_await c->list_checkpoints(name, include_auto);
  co_return [all](lua_State* L) {
    lua_createtable(L, static_cast<int>(all.size()), 0);
    for (std::size_t i = 0; i < all.size(); ++i) {
      push_checkpoint(L, all[i]);
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    return 1;
  };
}

int l_checkpoints(lua_State* L) {
  return start_op(L, list_checkpoints(client_of(L), std::string(lua::check_string(L, 1)),
                                      lua_toboolean(L, 2) != 0));
}

asio::awaitable<Pusher> get_checkpoint(std::shared_ptr<Client> c, std::string name,
                                       std::string id) {
  proto::Checkpoint cp = co_await c->get_checkpoint(name, id);
  co_return [cp](lua_State* L) {
    push_checkpoint(L, cp);
    return 1;
  };
}

int l_get_checkpoint(lua_State* L) {
  return start_op(L, get_checkpoint(client_of(L), std::string(lua::check_string(L, 1)),
                                    std::string(lua::check_string(L, 2))));
}

asio::awaitable<Pusher> delete_checkpoint(std::shared_ptr<Client> c, std::string name,
                                          std::string id) {
  co_await c->delete_checkpoint(name, id);
  co_return nothing();
}

int l_delete_checkpoint(lua_State* L) {
  return start_op(L, delete_checkpoint(client_of(L), std::string(lua::check_string(L, 1)),
                                       std::string(lua::check_string(L, 2))));
}

// ---- files -------------------------------------------------------------------

void set_number(lua_State* L, const char* key, double value) {
  lua_pushnumber(L, value);
  lua_setfield(L, -2, key);
}

void push_entry(lua_State* L, const proto::FsEntry& e) {
  lua_createtable(L, 0, 7);
  set_string(L, "name", e.name);
  set_string(L, "path", e.path);
  set_string(L, "type", e.type);
  set_number(L, "size", static_cast<double>(e.size));
  set_number(L, "mode", e.mode);
  set_string(L, "mod_time", e.mod_time);
  lua_pushboolean(L, e.is_dir);
  lua_setfield(L, -2, "is_dir");
}

void push_entries(lua_State* L, const std::vector<proto::FsEntry>& all) {
  lua_createtable(L, static_cast<int>(all.size()), 0);
  for (std::size_t i = 0; i < all.size(); ++i) {
    push_entry(L, all[i]);
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
}

// A mode from Lua: a number is the mode's value (0644 is 420), a string is
// octal ("0644", "755").
unsigned mode_arg(lua_State* L, int idx) {
  if (lua_type(L, idx) == LUA_TNUMBER) {
    const double m = lua_tonumber(L, idx);
    if (m >= 0 && m <= 07777 && m == static_cast<double>(static_cast<unsigned>(m))) {
      return static_cast<unsigned>(m);
    }
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    if (auto m = proto::parse_octal_mode(lua_tostring(L, idx))) return *m;
  }
  throw std::runtime_error(
      R"(a mode is an octal string ("0644", "755") or its value as a number (420))");
}

std::string string_arg(lua_State* L, int idx, const char* what) {
  if (lua_type(L, idx) != LUA_TSTRING)
    throw std::runtime_error(std::string(what) + " must be a string");
  size_t len = 0;
  const char* s = lua_tolstring(L, idx, &len);
  return {s, len};
}

asio::awaitable<Pusher> read_file(std::shared_ptr<Client> c, std::string name, std::string path) {
  client::FsOptions options;
  std::string data = co_await c->read_file(name, path, options);
  co_return [data = std::move(data)](lua_State* L) {
    lua::push(L, data);
    return 1;
  };
}

// client.read_file(name, path) -> op: the whole file
int l_read_file(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string path = string_arg(L, 2, "the path");
  return start_op(L, read_file(client_of(L), std::move(name), std::move(path)));
}

// A file being read piece by piece: the object behind s:open().
struct Reader {
  static constexpr const char* kTypeName = "spritescript.client.reader";
  std::shared_ptr<Client> client;  // outlives the connection
  std::shared_ptr<client::FileReader> reader;
};

asio::awaitable<Pusher> open_file(std::shared_ptr<Client> c, std::string name, std::string path) {
  client::FsOptions options;
  std::unique_ptr<client::FileReader> reader = co_await c->open_file(name, path, options);
  std::shared_ptr<client::FileReader> shared = std::move(reader);
  co_return [c, shared](lua_State* L) {
    lua::new_userdata<Reader>(L, Reader{c, shared});
    return 1;
  };
}

// client.open_file(name, path) -> op: reader
int l_open_file(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string path = string_arg(L, 2, "the path");
  return start_op(L, open_file(client_of(L), std::move(name), std::move(path)));
}

asio::awaitable<Pusher> reader_next(std::shared_ptr<client::FileReader> reader) {
  std::optional<std::string> piece;
  if (reader) piece = co_await reader->next();
  co_return [piece = std::move(piece)](lua_State* L) {
    if (piece) {
      lua::push(L, *piece);
    } else {
      lua_pushnil(L);
    }
    return 1;
  };
}

// reader:next() -> op: the next piece, nil at the end (or once closed)
int l_reader_next(lua_State* L) {
  return start_op(L, reader_next(lua::check_userdata<Reader>(L, 1)->reader));
}

// reader:close(): drops the connection (a read in flight keeps it until it ends)
int l_reader_close(lua_State* L) {
  lua::check_userdata<Reader>(L, 1)->reader.reset();
  return 0;
}

// reader:info() -> bytes read so far, the size when the server said it (else nil)
int l_reader_info(lua_State* L) {
  auto* r = lua::check_userdata<Reader>(L, 1);
  if (!r->reader) {
    lua_pushnil(L);
    lua_pushnil(L);
    return 2;
  }
  lua_pushnumber(L, static_cast<lua_Number>(r->reader->bytes_read()));
  if (auto size = r->reader->size()) {
    lua_pushnumber(L, static_cast<lua_Number>(*size));
  } else {
    lua_pushnil(L);
  }
  return 2;
}

// {path, size, mode} of a file written (write_file, upload_file).
Pusher written(const proto::FsWritten& w) {
  return [w](lua_State* L) {
    lua_createtable(L, 0, 3);
    set_string(L, "path", w.path);
    set_number(L, "size", static_cast<double>(w.size));
    set_number(L, "mode", w.mode);
    return 1;
  };
}

asio::awaitable<Pusher> write_file(std::shared_ptr<Client> c, std::string name, std::string path,
                                   std::string data, std::optional<unsigned> mode, bool mkdir) {
  client::FsOptions options;
  proto::FsWritten w = co_await c->write_file(name, path, std::move(data), mode, mkdir, options);
  co_return written(w);
}

// client.write_file(name, path, data, mode|nil, mkdir) -> op: {path, size, mode}
int l_write_file(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string path = string_arg(L, 2, "the path");
  std::string data = string_arg(L, 3, "the data");
  std::optional<unsigned> mode;
  if (!lua_isnil(L, 4)) mode = mode_arg(L, 4);
  const bool mkdir = lua_isnil(L, 5) || lua_toboolean(L, 5) != 0;
  return start_op(
      L, write_file(client_of(L), std::move(name), std::move(path), std::move(data), mode, mkdir));
}

asio::awaitable<Pusher> upload_file(std::shared_ptr<Client> c, std::string name, std::string path,
                                    std::string local_path, std::optional<unsigned> mode,
                                    bool mkdir) {
  client::FsOptions options;
  proto::FsWritten w = co_await c->write_file_from(name, path, local_path, mode, mkdir, options);
  co_return written(w);
}

// client.upload_file(name, path, local_path, mode|nil, mkdir) -> op: {path, size, mode};
// the local regular file is streamed, never whole in memory
int l_upload_file(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string path = string_arg(L, 2, "the path");
  std::string local_path = string_arg(L, 3, "the local file");
  std::optional<unsigned> mode;
  if (!lua_isnil(L, 4)) mode = mode_arg(L, 4);
  const bool mkdir = lua_isnil(L, 5) || lua_toboolean(L, 5) != 0;
  return start_op(L, upload_file(client_of(L), std::move(name), std::move(path),
                                 std::move(local_path), mode, mkdir));
}

asio::awaitable<Pusher> list_dir(std::shared_ptr<Client> c, std::string name, std::string path,
                                 bool recursive) {
  client::FsOptions options;
  std::vector<proto::FsEntry> all = co_await c->list_dir(name, path, recursive, options);
  co_return [all = std::move(all)](lua_State* L) {
    push_entries(L, all);
    return 1;
  };
}

// client.list_dir(name, path, recursive) -> op: entries
int l_list_dir(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string path = string_arg(L, 2, "the path");
  const bool recursive = lua_toboolean(L, 3) != 0;
  return start_op(L, list_dir(client_of(L), std::move(name), std::move(path), recursive));
}

asio::awaitable<Pusher> stat_path(std::shared_ptr<Client> c, std::string name, std::string path) {
  client::FsOptions options;
  proto::FsEntry e = co_await c->stat(name, path, options);
  co_return [e](lua_State* L) {
    push_entry(L, e);
    return 1;
  };
}

// client.stat(name, path) -> op: entry (not_found when missing)
int l_stat(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string path = string_arg(L, 2, "the path");
  return start_op(L, stat_path(client_of(L), std::move(name), std::move(path)));
}

asio::awaitable<Pusher> remove_path(std::shared_ptr<Client> c, std::string name, std::string path,
                                    bool recursive) {
  client::FsOptions options;
  std::vector<std::string> removed = co_await c->remove(name, path, recursive, options);
  co_return [removed = std::move(removed)](lua_State* L) {
    push_strings(L, removed);
    return 1;
  };
}

// client.remove(name, path, recursive) -> op: the removed paths
int l_remove(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string path = string_arg(L, 2, "the path");
  const bool recursive = lua_toboolean(L, 3) != 0;
  return start_op(L, remove_path(client_of(L), std::move(name), std::move(path), recursive));
}

void push_move(lua_State* L, const proto::FsMove& m) {
  lua_createtable(L, 0, 2);
  set_string(L, "source", m.source);
  set_string(L, "dest", m.dest);
}

asio::awaitable<Pusher> rename_path(std::shared_ptr<Client> c, std::string name, std::string source,
                                    std::string dest) {
  client::FsOptions options;
  proto::FsMove m = co_await c->rename(name, source, dest, options);
  co_return [m](lua_State* L) {
    push_move(L, m);
    return 1;
  };
}

// client.rename(name, source, dest) -> op: {source, dest}
int l_rename(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string source = string_arg(L, 2, "the source");
  std::string dest = string_arg(L, 3, "the destination");
  return start_op(L,
                  rename_path(client_of(L), std::move(name), std::move(source), std::move(dest)));
}

asio::awaitable<Pusher> copy_path(std::shared_ptr<Client> c, std::string name, std::string source,
                                  std::string dest, bool recursive, bool preserve) {
  client::FsOptions options;
  proto::FsCopied copied = co_await c->copy(name, source, dest, recursive, preserve, options);
  co_return [copied = std::move(copied)](lua_State* L) {
    lua_createtable(L, 0, 2);
    lua_createtable(L, static_cast<int>(copied.copied.size()), 0);
    for (std::size_t i = 0; i < copied.copied.size(); ++i) {
      push_move(L, copied.copied[i]);
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    lua_setfield(L, -2, "copied");
    set_number(L, "total_bytes", static_cast<double>(copied.total_bytes));
    return 1;
  };
}

// client.copy(name, source, dest, recursive, preserve) -> op: {copied = {{source, dest}...},
// total_bytes}
int l_copy(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string source = string_arg(L, 2, "the source");
  std::string dest = string_arg(L, 3, "the destination");
  const bool recursive = lua_toboolean(L, 4) != 0;
  const bool preserve = lua_toboolean(L, 5) != 0;
  return start_op(L, copy_path(client_of(L), std::move(name), std::move(source), std::move(dest),
                               recursive, preserve));
}

void push_changes(lua_State* L, const std::vector<proto::FsChange>& changes) {
  lua_createtable(L, static_cast<int>(changes.size()), 0);
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const proto::FsChange& ch = changes[i];
    lua_createtable(L, 0, 4);
    set_string(L, "path", ch.path);
    if (ch.mode) set_number(L, "mode", *ch.mode);
    if (ch.uid) set_number(L, "uid", static_cast<double>(*ch.uid));
    if (ch.gid) set_number(L, "gid", static_cast<double>(*ch.gid));
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
}

asio::awaitable<Pusher> chmod_path(std::shared_ptr<Client> c, std::string name, std::string path,
                                   unsigned mode, bool recursive) {
  client::FsOptions options;
  std::vector<proto::FsChange> changes = co_await c->chmod(name, path, mode, recursive, options);
  co_return [changes = std::move(changes)](lua_State* L) {
    push_changes(L, changes);
    return 1;
  };
}

// client.chmod(name, path, mode, recursive) -> op: {{path, mode}...}
int l_chmod(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string path = string_arg(L, 2, "the path");
  const unsigned mode = mode_arg(L, 3);
  const bool recursive = lua_toboolean(L, 4) != 0;
  return start_op(L, chmod_path(client_of(L), std::move(name), std::move(path), mode, recursive));
}

asio::awaitable<Pusher> chown_path(std::shared_ptr<Client> c, std::string name, std::string path,
                                   std::string user, std::string group, bool recursive) {
  client::FsOptions options;
  std::vector<proto::FsChange> changes =
      co_await c->chown(name, path, user, group, recursive, options);
  co_return [changes = std::move(changes)](lua_State* L) {
    push_changes(L, changes);
    return 1;
  };
}

// client.chown(name, path, user, group, recursive) -> op: {{path, uid, gid}...}
int l_chown(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string path = string_arg(L, 2, "the path");
  std::string user = lua_isnil(L, 3) ? std::string() : string_arg(L, 3, "user");
  std::string group = lua_isnil(L, 4) ? std::string() : string_arg(L, 4, "group");
  const bool recursive = lua_toboolean(L, 5) != 0;
  return start_op(L, chown_path(client_of(L), std::move(name), std::move(path), std::move(user),
                                std::move(group), recursive));
}

// ---- the local side of push and pull (synchronous: the local disk) ------------

namespace fs = std::filesystem;

// nil, message: how the local helpers report a failure.
int local_failure(lua_State* L, const std::string& message) {
  lua_pushnil(L);
  lua::push(L, message);
  return 2;
}

// client.local_tree(dir) -> {{path=relative, type=file|directory|symlink|other, size, mode}...}
// sorted by path, or nil, message. Symlinks are not followed.
int l_local_tree(lua_State* L) {
  fs::path root = fs::path(string_arg(L, 1, "the directory")).lexically_normal();
  if (!root.has_filename() && root != root.root_path()) root = root.parent_path();  // "dir/"
  struct Item {
    std::string path, type;
    std::uintmax_t size = 0;
    unsigned mode = 0;
  };
  std::vector<Item> items;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return local_failure(L, root.string() + ": not a directory");
  fs::recursive_directory_iterator it(root, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const fs::directory_entry& entry = *it;
    const fs::file_status st = entry.symlink_status(ec);
    if (ec) break;
    Item item;
    // Lexically: fs::relative would resolve a symlink to its target's name.
    item.path = entry.path().lexically_relative(root).generic_string();
    item.mode = static_cast<unsigned>(st.permissions() & fs::perms::mask);
    if (fs::is_symlink(st)) {
      item.type = "symlink";
    } else if (fs::is_directory(st)) {
      item.type = "directory";
    } else if (fs::is_regular_file(st)) {
      item.type = "file";
      item.size = entry.file_size(ec);
      if (ec) break;
    } else {
      item.type = "other";
    }
    items.push_back(std::move(item));
  }
  if (ec) return local_failure(L, root.string() + ": " + ec.message());
  std::sort(items.begin(), items.end(),
            [](const Item& a, const Item& b) { return a.path < b.path; });
  lua_createtable(L, static_cast<int>(items.size()), 0);
  for (std::size_t i = 0; i < items.size(); ++i) {
    lua_createtable(L, 0, 4);
    set_string(L, "path", items[i].path);
    set_string(L, "type", items[i].type);
    set_number(L, "size", static_cast<double>(items[i].size));
    set_number(L, "mode", items[i].mode);
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  return 1;
}

// client.local_stat(path) -> {type=file|directory|symlink|other, size, mode}, or nil,
// message (symlinks followed)
int l_local_stat(lua_State* L) {
  const fs::path path(string_arg(L, 1, "the path"));
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec) return local_failure(L, path.string() + ": " + ec.message());
  std::uintmax_t size = 0;
  std::string type = "other";
  if (fs::is_directory(st)) {
    type = "directory";
  } else if (fs::is_regular_file(st)) {
    type = "file";
    size = fs::file_size(path, ec);
    if (ec) return local_failure(L, path.string() + ": " + ec.message());
  }
  lua_createtable(L, 0, 3);
  set_string(L, "type", type);
  set_number(L, "size", static_cast<double>(size));
  set_number(L, "mode", static_cast<unsigned>(st.permissions() & fs::perms::mask));
  return 1;
}

// client.local_mkdir(path) -> true, or nil, message (parents made too)
int l_local_mkdir(lua_State* L) {
  const fs::path path(string_arg(L, 1, "the directory"));
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) return local_failure(L, path.string() + ": " + ec.message());
  lua_pushboolean(L, 1);
  return 1;
}

// client.local_chmod(path, mode) -> true, or nil, message
int l_local_chmod(lua_State* L) {
  const fs::path path(string_arg(L, 1, "the path"));
  const unsigned mode = mode_arg(L, 2);
  std::error_code ec;
  fs::permissions(path, static_cast<fs::perms>(mode), fs::perm_options::replace, ec);
  if (ec) return local_failure(L, path.string() + ": " + ec.message());
  lua_pushboolean(L, 1);
  return 1;
}

// client.fnmatch(pattern, text, pathname) -> whether it matches, as fs/list's `pattern`
int l_fnmatch(lua_State* L) {
  const std::string pattern = string_arg(L, 1, "the pattern");
  const std::string text = string_arg(L, 2, "the name");
  const int flags = lua_toboolean(L, 3) != 0 ? FNM_PATHNAME : 0;
  lua_pushboolean(L, ::fnmatch(pattern.c_str(), text.c_str(), flags) == 0);
  return 1;
}

// ---- services -----------------------------------------------------------------

void push_service(lua_State* L, const proto::Service& s) {
  lua_createtable(L, 0, 8);
  set_string(L, "name", s.name);
  set_string(L, "cmd", s.cmd);
  push_strings(L, s.args);
  lua_setfield(L, -2, "args");
  lua_createtable(L, 0, static_cast<int>(s.env.size()));
  for (const auto& [k, v] : s.env) set_string(L, k.c_str(), v);
  lua_setfield(L, -2, "env");
  set_string(L, "dir", s.dir);
  push_strings(L, s.needs);
  lua_setfield(L, -2, "needs");
  if (s.http_port) set_number(L, "http_port", *s.http_port);
  if (s.state) {
    const proto::ServiceState& st = *s.state;
    lua_createtable(L, 0, 7);
    set_string(L, "name", st.name);
    set_string(L, "status", st.status);
    if (st.pid) set_number(L, "pid", *st.pid);
    set_string(L, "started_at", st.started_at);
    set_string(L, "error", st.error);
    set_number(L, "restart_count", st.restart_count);
    set_string(L, "next_restart_at", st.next_restart_at);
    lua_setfield(L, -2, "state");
  }
}

asio::awaitable<Pusher> list_services(std::shared_ptr<Client> c, std::string name) {
  std::vector<proto::Service> all = co_await c->list_services(name);
  co_return [all = std::move(all)](lua_State* L) {
    lua_createtable(L, static_cast<int>(all.size()), 0);
    for (std::size_t i = 0; i < all.size(); ++i) {
      push_service(L, all[i]);
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    return 1;
  };
}

// client.services(name) -> op: services
int l_services(lua_State* L) {
  return start_op(L, list_services(client_of(L), string_arg(L, 1, "the sprite name")));
}

asio::awaitable<Pusher> get_service(std::shared_ptr<Client> c, std::string name, std::string svc) {
  proto::Service s = co_await c->get_service(name, svc);
  co_return [s = std::move(s)](lua_State* L) {
    push_service(L, s);
    return 1;
  };
}

// client.service(name, svc) -> op: service (not_found when missing)
int l_service(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string svc = string_arg(L, 2, "the service name");
  return start_op(L, get_service(client_of(L), std::move(name), std::move(svc)));
}

using Nanos = std::chrono::nanoseconds;

// Seconds at `idx` (nil: none) as a duration.
std::optional<Nanos> seconds_arg(lua_State* L, int idx, const char* what) {
  if (lua_isnil(L, idx) || lua_isnone(L, idx)) return std::nullopt;
  if (lua_type(L, idx) != LUA_TNUMBER || lua_tonumber(L, idx) < 0) {
    throw std::runtime_error(std::string(what) + " must be a number of seconds (0 or more)");
  }
  return Nanos(static_cast<std::int64_t>(lua_tonumber(L, idx) * 1e9));
}

Pusher events_pusher(std::unique_ptr<client::EventStream> events) {
  std::shared_ptr<client::EventStream> shared = std::move(events);
  return [shared](lua_State* L) {
    lua::new_userdata<Events>(L, Events{shared});
    return 1;
  };
}

enum class ServiceCall { put, start, stop, restart, logs };

asio::awaitable<Pusher> service_events(std::shared_ptr<Client> c, std::string name, std::string svc,
                                       ServiceCall which, proto::ServiceDefinition definition,
                                       std::optional<Nanos> duration, std::optional<int> lines) {
  std::unique_ptr<client::EventStream> events;
  switch (which) {
    case ServiceCall::put:
      events = co_await c->put_service(name, svc, definition, duration);
      break;
    case ServiceCall::start:
      events = co_await c->start_service(name, svc, duration);
      break;
    case ServiceCall::stop:
      events = co_await c->stop_service(name, svc, duration);
      break;
    case ServiceCall::restart:
      events = co_await c->restart_service(name, svc, duration);
      break;
    case ServiceCall::logs:
      events = co_await c->service_logs(name, svc, lines, duration);
      break;
  }
  co_return events_pusher(std::move(events));
}

// client.put_service(name, svc, {cmd=, args=, env=, dir=, needs=, http_port=}, duration) -> op:
// events
int l_put_service(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string svc = string_arg(L, 2, "the service name");
  if (!lua_istable(L, 3)) throw std::runtime_error("the service definition must be a table");
  proto::ServiceDefinition def;
  def.cmd = opt_string(L, 3, "cmd");
  if (def.cmd.empty()) throw std::runtime_error("the service needs a cmd");
  lua_getfield(L, 3, "args");
  if (!lua_isnil(L, -1)) def.args = string_array(L, lua_gettop(L), "args");
  lua_pop(L, 1);
  for (auto& [k, v] : opt_env(L, 3, "env")) def.env[k] = v;
  def.dir = opt_string(L, 3, "dir");
  lua_getfield(L, 3, "needs");
  if (!lua_isnil(L, -1)) def.needs = string_array(L, lua_gettop(L), "needs");
  lua_pop(L, 1);
  if (auto port = opt_number(L, 3, "http_port")) def.http_port = static_cast<int>(*port);
  std::optional<Nanos> duration = seconds_arg(L, 4, "duration");
  return start_op(L, service_events(client_of(L), std::move(name), std::move(svc), ServiceCall::put,
                                    std::move(def), duration, std::nullopt));
}

template <ServiceCall Which>
int l_service_call(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string svc = string_arg(L, 2, "the service name");
  std::optional<Nanos> duration = seconds_arg(L, 3, "duration");
  std::optional<int> lines;
  if (Which == ServiceCall::logs && !lua_isnoneornil(L, 4)) {
    if (lua_type(L, 4) != LUA_TNUMBER) throw std::runtime_error("lines must be a number");
    lines = static_cast<int>(lua_tonumber(L, 4));
  }
  return start_op(L, service_events(client_of(L), std::move(name), std::move(svc), Which,
                                    proto::ServiceDefinition{}, duration, lines));
}

asio::awaitable<Pusher> delete_service(std::shared_ptr<Client> c, std::string name,
                                       std::string svc) {
  co_await c->delete_service(name, svc);
  co_return nothing();
}

// client.delete_service(name, svc) -> op: true
int l_delete_service(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string svc = string_arg(L, 2, "the service name");
  return start_op(L, delete_service(client_of(L), std::move(name), std::move(svc)));
}

asio::awaitable<Pusher> signal_service(std::shared_ptr<Client> c, std::string name, std::string svc,
                                       std::string signal) {
  co_await c->signal_service(name, svc, signal);
  co_return nothing();
}

// client.signal_service(name, svc, signal) -> op: true
int l_signal_service(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string svc = string_arg(L, 2, "the service name");
  std::string signal = lua_isnoneornil(L, 3) ? std::string("TERM") : string_arg(L, 3, "the signal");
  return start_op(L,
                  signal_service(client_of(L), std::move(name), std::move(svc), std::move(signal)));
}

// ---- sessions -----------------------------------------------------------------

asio::awaitable<Pusher> list_sessions(std::shared_ptr<Client> c, std::string name) {
  std::vector<proto::SessionEntry> all = co_await c->list_sessions(name);
  co_return [all = std::move(all)](lua_State* L) {
    lua_createtable(L, static_cast<int>(all.size()), 0);
    for (std::size_t i = 0; i < all.size(); ++i) {
      const proto::SessionEntry& e = all[i];
      lua_createtable(L, 0, 7);
      set_string(L, "id", e.id);
      set_string(L, "command", e.command);
      set_string(L, "workdir", e.workdir);
      set_string(L, "created", e.created);
      lua_pushboolean(L, e.is_active);
      lua_setfield(L, -2, "is_active");
      lua_pushboolean(L, e.tty);
      lua_setfield(L, -2, "tty");
      set_number(L, "bytes_per_second", e.bytes_per_second);
      lua_rawseti(L, -2, static_cast<int>(i + 1));
    }
    return 1;
  };
}

// client.sessions(name) -> op: sessions
int l_sessions(lua_State* L) {
  return start_op(L, list_sessions(client_of(L), string_arg(L, 1, "the sprite name")));
}

asio::awaitable<Pusher> attach_op(std::shared_ptr<Client> c, std::string name, std::string id) {
  auto state = std::make_shared<RunState>();
  state->process = co_await c->attach(name, id);
  state->sprite = name;
  co_return [c, state](lua_State* L) {
    lua::new_userdata<Process>(L, Process{c, state});
    return 1;
  };
}

// client.attach(name, session_id) -> op: process
int l_attach(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string id = string_arg(L, 2, "the session id");
  return start_op(L, attach_op(client_of(L), std::move(name), std::move(id)));
}

asio::awaitable<Pusher> kill_session(std::shared_ptr<Client> c, std::string name, std::string id,
                                     std::string signal, std::optional<Nanos> timeout) {
  std::unique_ptr<client::EventStream> events = co_await c->kill_session(name, id, signal, timeout);
  co_return events_pusher(std::move(events));
}

// client.kill_session(name, id, signal, timeout) -> op: events
int l_kill_session(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string id = string_arg(L, 2, "the session id");
  std::string signal = lua_isnoneornil(L, 3) ? std::string("TERM") : string_arg(L, 3, "the signal");
  std::optional<Nanos> timeout = seconds_arg(L, 4, "timeout");
  return start_op(
      L, kill_session(client_of(L), std::move(name), std::move(id), std::move(signal), timeout));
}

// ---- policies -----------------------------------------------------------------

// {rules = {{domain=, action=} or {include=}, ...}}: only the fields a rule has.
void push_network_policy(lua_State* L, const proto::NetworkPolicy& policy) {
  lua_createtable(L, 0, 1);
  lua_createtable(L, static_cast<int>(policy.rules.size()), 0);
  for (std::size_t i = 0; i < policy.rules.size(); ++i) {
    const proto::PolicyRule& rule = policy.rules[i];
    lua_createtable(L, 0, 2);
    if (!rule.domain.empty()) set_string(L, "domain", rule.domain);
    if (!rule.action.empty()) set_string(L, "action", rule.action);
    if (!rule.include.empty()) set_string(L, "include", rule.include);
    lua_rawseti(L, -2, static_cast<int>(i + 1));
  }
  lua_setfield(L, -2, "rules");
}

asio::awaitable<Pusher> get_network_policy(std::shared_ptr<Client> c, std::string name) {
  proto::NetworkPolicy policy = co_await c->get_network_policy(name);
  co_return [policy = std::move(policy)](lua_State* L) {
    push_network_policy(L, policy);
    return 1;
  };
}

// client.network_policy(name) -> op: {rules = {...}}
int l_network_policy(lua_State* L) {
  return start_op(L, get_network_policy(client_of(L), string_arg(L, 1, "the sprite name")));
}

asio::awaitable<Pusher> set_network_policy(std::shared_ptr<Client> c, std::string name,
                                           proto::NetworkPolicy policy) {
  co_await c->set_network_policy(name, policy);
  co_return nothing();
}

// client.set_network_policy(name, {{domain=, action=} or {include=}, ...}) -> op: true.
// Sent as given: the server validates.
int l_set_network_policy(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  if (!lua_istable(L, 2)) throw std::runtime_error("the rules must be a table");
  proto::NetworkPolicy policy;
  const int n = static_cast<int>(lua_objlen(L, 2));
  for (int i = 1; i <= n; ++i) {
    lua_rawgeti(L, 2, i);
    const int rule = lua_gettop(L);
    if (!lua_istable(L, rule)) {
      lua_pop(L, 1);
      throw std::runtime_error("rule " + std::to_string(i) + " must be a table");
    }
    proto::PolicyRule r;
    r.domain = opt_string(L, rule, "domain");
    r.action = opt_string(L, rule, "action");
    r.include = opt_string(L, rule, "include");
    lua_pop(L, 1);
    policy.rules.push_back(std::move(r));
  }
  return start_op(L, set_network_policy(client_of(L), std::move(name), std::move(policy)));
}

// "privileges" or "resources" at `idx`.
std::string policy_kind(lua_State* L, int idx) {
  std::string kind = string_arg(L, idx, "the policy kind");
  if (kind != "privileges" && kind != "resources") {
    throw std::runtime_error("the policy kind is \"privileges\" or \"resources\", not \"" + kind +
                             "\"");
  }
  return kind;
}

enum class PolicyCall { get, set, remove };

asio::awaitable<Pusher> policy_op(std::shared_ptr<Client> c, std::string name, std::string kind,
                                  PolicyCall which, std::string json) {
  const bool privileges = kind == "privileges";
  std::string text;
  switch (which) {
    case PolicyCall::get:
      if (privileges) {
        text = co_await c->get_privileges(name);
      } else {
        text = co_await c->get_resources(name);
      }
      break;
    case PolicyCall::set:
      if (privileges) {
        text = co_await c->set_privileges(name, json);
      } else {
        text = co_await c->set_resources(name, json);
      }
      break;
    case PolicyCall::remove:
      if (privileges) {
        co_await c->delete_privileges(name);
      } else {
        co_await c->delete_resources(name);
      }
      co_return nothing();
  }
  co_return [text = std::move(text)](lua_State* L) {
    lua::push(L, text);
    return 1;
  };
}

// client.policy(name, kind) -> op: the JSON text (kind: privileges, resources)
int l_policy(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string kind = policy_kind(L, 2);
  return start_op(L,
                  policy_op(client_of(L), std::move(name), std::move(kind), PolicyCall::get, {}));
}

// client.set_policy(name, kind, json) -> op: the stored object as JSON text
int l_set_policy(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string kind = policy_kind(L, 2);
  std::string json = string_arg(L, 3, "the policy (JSON)");
  return start_op(L, policy_op(client_of(L), std::move(name), std::move(kind), PolicyCall::set,
                               std::move(json)));
}

// client.delete_policy(name, kind) -> op: true (back to the default)
int l_delete_policy(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  std::string kind = policy_kind(L, 2);
  return start_op(
      L, policy_op(client_of(L), std::move(name), std::move(kind), PolicyCall::remove, {}));
}

// ---- tunnels, port watches and port forwards ---------------------------------

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

// A tunnel into the sprite: the object behind s:tunnel().
struct TunnelHandle {
  static constexpr const char* kTypeName = "spritescript.client.tunnel";
  std::shared_ptr<Client> client;  // outlives the connection
  std::shared_ptr<client::Tunnel> tunnel;
  // Set by close() at once: the client's close runs in the background, and
  // a read right after it must already see the end.
  bool closed = false;
};

asio::awaitable<Pusher> open_tunnel(std::shared_ptr<Client> c, std::string name, int port,
                                    std::string host) {
  const std::string_view host_view = host;
  std::unique_ptr<client::Tunnel> tunnel = co_await c->open_tunnel(name, port, host_view);
  std::shared_ptr<client::Tunnel> shared = std::move(tunnel);
  co_return [c, shared](lua_State* L) {
    lua::new_userdata<TunnelHandle>(L, TunnelHandle{c, shared});
    return 1;
  };
}

int port_arg(lua_State* L, int idx, const char* what, int low) {
  if (lua_type(L, idx) != LUA_TNUMBER)
    throw std::runtime_error(std::string(what) + " must be a number");
  const double p = lua_tonumber(L, idx);
  if (p < low || p > 65535 || p != static_cast<double>(static_cast<int>(p))) {
    throw std::runtime_error(std::string(what) + " must be an integer from " + std::to_string(low) +
                             " to 65535");
  }
  return static_cast<int>(p);
}

// client.tunnel(name, port, host) -> op: tunnel
int l_tunnel(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  const int port = port_arg(L, 2, "the port", 1);
  std::string host = lua_isnoneornil(L, 3) ? std::string("localhost") : string_arg(L, 3, "host");
  return start_op(L, open_tunnel(client_of(L), std::move(name), port, std::move(host)));
}

TunnelHandle& check_tunnel(lua_State* L) {
  return *lua::check_userdata<TunnelHandle>(L, 1);
}

asio::awaitable<Pusher> tunnel_read(std::shared_ptr<client::Tunnel> tunnel) {
  std::optional<std::string> data;
  if (tunnel) data = co_await tunnel->read();
  co_return [data = std::move(data)](lua_State* L) {
    if (data) {
      lua::push(L, *data);
    } else {
      lua_pushnil(L);
    }
    return 1;
  };
}

// tunnel:read() -> op: the next bytes, nil at the end
int l_tunnel_read(lua_State* L) {
  TunnelHandle& t = check_tunnel(L);
  return start_op(L, tunnel_read(t.closed ? nullptr : t.tunnel));
}

asio::awaitable<Pusher> tunnel_write(std::shared_ptr<client::Tunnel> tunnel, std::string data) {
  co_await tunnel->write(data);
  co_return nothing();
}

// tunnel:write(data) -> op: true once sent
int l_tunnel_write(lua_State* L) {
  TunnelHandle& t = check_tunnel(L);
  std::string data = string_arg(L, 2, "the data");
  return start_op(L, tunnel_write(t.tunnel, std::move(data)));
}

asio::awaitable<void> close_tunnel(std::shared_ptr<client::Tunnel> tunnel) {
  co_await tunnel->close();
}

// tunnel:close(): ends the tunnel (a close frame, sent in the background;
// a pending read ends)
int l_tunnel_close(lua_State* L) {
  TunnelHandle& t = check_tunnel(L);
  t.closed = true;
  if (t.tunnel && !t.tunnel->closed()) {
    asio::co_spawn(state_of(L).io, close_tunnel(t.tunnel), asio::detached);
  }
  return 0;
}

// tunnel:info() -> {target=, bytes_read=, bytes_written=}
int l_tunnel_info(lua_State* L) {
  TunnelHandle& t = check_tunnel(L);
  lua_createtable(L, 0, 3);
  set_string(L, "target", t.tunnel->target());
  set_number(L, "bytes_read", static_cast<double>(t.tunnel->bytes_read()));
  set_number(L, "bytes_written", static_cast<double>(t.tunnel->bytes_written()));
  lua_pushboolean(L, t.closed || t.tunnel->closed());
  lua_setfield(L, -2, "closed");
  return 1;
}

// A port watch: the object behind s:ports().
struct PortsHandle {
  static constexpr const char* kTypeName = "spritescript.client.ports";
  std::shared_ptr<Client> client;
  std::shared_ptr<client::PortWatch> watch;
};

asio::awaitable<Pusher> watch_ports(std::shared_ptr<Client> c, std::string name) {
  std::unique_ptr<client::PortWatch> watch = co_await c->watch_ports(name);
  std::shared_ptr<client::PortWatch> shared = std::move(watch);
  co_return [c, shared](lua_State* L) {
    lua::new_userdata<PortsHandle>(L, PortsHandle{c, shared});
    return 1;
  };
}

// client.watch_ports(name) -> op: watch (once the server sent its list)
int l_watch_ports(lua_State* L) {
  return start_op(L, watch_ports(client_of(L), string_arg(L, 1, "the sprite name")));
}

asio::awaitable<Pusher> ports_next(std::shared_ptr<client::PortWatch> watch) {
  std::optional<proto::PortEvent> event = co_await watch->next();
  co_return [event = std::move(event)](lua_State* L) {
    if (!event) {
      lua_pushnil(L);
      return 1;
    }
    lua_createtable(L, 0, 4);
    set_string(L, "type", event->opened ? "opened" : "closed");
    set_number(L, "port", event->port);
    set_string(L, "address", event->address);
    if (event->pid > 0) set_number(L, "pid", event->pid);
    return 1;
  };
}

// watch:next() -> op: {type="opened"|"closed", port=, address=, pid=} | nil at the end
int l_ports_next(lua_State* L) {
  return start_op(L, ports_next(lua::check_userdata<PortsHandle>(L, 1)->watch));
}

// watch:close(): drops the connection; a pending next() gives nil
int l_ports_close(lua_State* L) {
  lua::check_userdata<PortsHandle>(L, 1)->watch->close();
  return 0;
}

// A port forward: a listener on the host whose every connection is relayed
// through a tunnel of its own, in C++ (no Lua per byte).
constexpr std::size_t kRelayPiece = std::size_t{64} * 1024;
// After the target closed, how long the local side has to close too
// before its connection is closed for it.
constexpr Millis kLinger{10'000};

struct Link {
  explicit Link(asio::ip::tcp::socket s) : socket(std::move(s)), linger(socket.get_executor()) {}
  asio::ip::tcp::socket socket;
  asio::steady_timer linger;
  std::shared_ptr<client::Tunnel> tunnel;
  bool local_done = false;   // the local peer closed (or failed)
  bool remote_done = false;  // the tunnel ended
  int running = 2;           // relay directions still running
};

struct Forward {
  Forward(asio::io_context& io, std::shared_ptr<Client> c) : client(std::move(c)), acceptor(io) {}
  std::shared_ptr<Client> client;
  std::string sprite, remote_host;
  int remote_port = 0;
  int local_port = 0;
  std::string local_host;
  asio::ip::tcp::acceptor acceptor;
  bool closed = false;
  std::set<std::shared_ptr<Link>> links;
  std::uint64_t accepted = 0, failed = 0, bytes_in = 0, bytes_out = 0;
  std::string last_error;
};

void close_link(Link& link) {
  boost::system::error_code ignored;
  link.socket.close(ignored);
  link.linger.cancel();
  if (link.tunnel) link.tunnel->abort();
}

void close_forward(Forward& forward) {
  if (forward.closed) return;
  forward.closed = true;
  boost::system::error_code ignored;
  forward.acceptor.close(ignored);
  const auto links = forward.links;  // the relays erase themselves later
  for (const auto& link : links) close_link(*link);
}

ClientState::~ClientState() {
  for (auto& weak : forwards) {
    if (auto f = weak.lock()) close_forward(*f);
  }
}

void link_done(Forward& forward, const std::shared_ptr<Link>& link) {
  if (--link->running > 0) return;
  boost::system::error_code ignored;
  link->socket.close(ignored);
  forward.links.erase(link);
}

// Local peer -> tunnel, one piece in flight (the tunnel's pace is ours).
asio::awaitable<void> relay_out(std::shared_ptr<Forward> forward, std::shared_ptr<Link> link) {
  std::string buffer(kRelayPiece, '\0');
  for (;;) {
    auto [ec, n] = co_await link->socket.async_read_some(asio::buffer(buffer), kAsTuple);
    if (ec) break;
    if (link->remote_done) continue;  // the target is gone: drain until the peer closes
    const std::string_view piece(buffer.data(), n);
    bool sent = true;
    try {
      co_await link->tunnel->write(piece);
    } catch (const std::exception&) {
      sent = false;
    }
    if (!sent) continue;  // relay_in sees the tunnel end and closes this side
    forward->bytes_out += n;
  }
  link->local_done = true;
  link->linger.cancel();
  // No half-close in the protocol (§9): the peer's end ends the tunnel.
  if (!link->remote_done) co_await link->tunnel->close();
  link_done(*forward, link);
}

// Tunnel -> local peer, one piece in flight.
asio::awaitable<void> relay_in(std::shared_ptr<Forward> forward, std::shared_ptr<Link> link) {
  for (;;) {
    std::optional<std::string> data;
    try {
      data = co_await link->tunnel->read();
    } catch (const std::exception& e) {
      if (!forward->closed && !link->local_done) forward->last_error = e.what();
    }
    if (!data) break;
    auto [ec, n] = co_await asio::async_write(link->socket, asio::buffer(*data), kAsTuple);
    if (ec) break;
    forward->bytes_in += n;
  }
  link->remote_done = true;
  // The target closed: end-of-file for the peer once what was sent arrived
  // (a close with unread input would reset the connection); the peer has a
  // while to close its side.
  boost::system::error_code ignored;
  link->socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
  if (!link->local_done) {
    link->linger.expires_after(kLinger);
    co_await link->linger.async_wait(kAsTuple);
  }
  link->socket.close(ignored);
  link_done(*forward, link);
}

asio::awaitable<void> relay(std::shared_ptr<Forward> forward, std::shared_ptr<Link> link) {
  std::unique_ptr<client::Tunnel> tunnel;
  std::string failure;
  try {
    const std::string_view host = forward->remote_host;
    tunnel = co_await forward->client->open_tunnel(forward->sprite, forward->remote_port, host);
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!tunnel || forward->closed) {
    if (!failure.empty()) {
      ++forward->failed;
      forward->last_error = failure;
    }
    boost::system::error_code ignored;
    link->socket.close(ignored);
    forward->links.erase(link);
    co_return;
  }
  link->tunnel = std::move(tunnel);
  auto executor = co_await asio::this_coro::executor;
  asio::co_spawn(executor, relay_out(forward, link), asio::detached);
  asio::co_spawn(executor, relay_in(forward, link), asio::detached);
}

asio::awaitable<void> accept_loop(std::shared_ptr<Forward> forward) {
  auto executor = co_await asio::this_coro::executor;
  while (!forward->closed) {
    auto [ec, socket] = co_await forward->acceptor.async_accept(kAsTuple);
    if (forward->closed) break;
    if (ec) {
      if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) break;
      // Out of descriptors and the like: say so, and try again in a moment.
      forward->last_error = "accept: " + ec.message();
      asio::steady_timer pause(executor, Millis(100));
      co_await pause.async_wait(kAsTuple);
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    auto link = std::make_shared<Link>(std::move(socket));
    forward->links.insert(link);
    ++forward->accepted;
    asio::co_spawn(executor, relay(forward, link), asio::detached);
  }
}

struct ForwardHandle {
  static constexpr const char* kTypeName = "spritescript.client.forward";
  std::shared_ptr<Forward> forward;
};

// client.forward(name, remote_port, local_port, local_host, remote_host)
// -> forward, or nil, message, kind (the listener could not be made)
int l_forward(lua_State* L) {
  std::string name = string_arg(L, 1, "the sprite name");
  const int remote_port = port_arg(L, 2, "the remote port", 1);
  const int local_port = lua_isnoneornil(L, 3) ? 0 : port_arg(L, 3, "local_port", 0);
  std::string local_host =
      lua_isnoneornil(L, 4) ? std::string("127.0.0.1") : string_arg(L, 4, "host");
  std::string remote_host =
      lua_isnoneornil(L, 5) ? std::string("localhost") : string_arg(L, 5, "remote_host");
  ClientState& state = state_of(L);
  boost::system::error_code ec;
  const std::string bind_host = local_host == "localhost" ? std::string("127.0.0.1") : local_host;
  const asio::ip::address address = asio::ip::make_address(bind_host, ec);
  if (ec) {
    lua_pushnil(L);
    lua::push(L, R"(host must be an IP address of this machine ("127.0.0.1", "::1"), not ')" +
                     local_host + "'");
    lua::push(L, "usage");
    return 3;
  }
  auto forward = std::make_shared<Forward>(state.io, client_of(L));
  forward->sprite = std::move(name);
  forward->remote_port = remote_port;
  forward->remote_host = std::move(remote_host);
  forward->local_host = local_host;
  const asio::ip::tcp::endpoint endpoint(address, static_cast<unsigned short>(local_port));
  auto& acceptor = forward->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(asio::ip::tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) forward->local_port = acceptor.local_endpoint(ec).port();
  if (ec) {
    const bool taken = ec == asio::error::address_in_use;
    lua_pushnil(L);
    lua::push(L, "cannot listen on " + local_host + ":" + std::to_string(local_port) + ": " +
                     ec.message());
    lua::push(L, taken ? "conflict" : "network");
    return 3;
  }
  auto& list = state.forwards;
  list.erase(std::remove_if(list.begin(), list.end(),
                            [](const std::weak_ptr<Forward>& w) { return w.expired(); }),
             list.end());
  list.push_back(forward);
  asio::co_spawn(state.io, accept_loop(forward), asio::detached);
  lua::new_userdata<ForwardHandle>(L, ForwardHandle{forward});
  return 1;
}

Forward& check_forward(lua_State* L) {
  return *lua::check_userdata<ForwardHandle>(L, 1)->forward;
}

// fwd:local_port() -> the port listening on this machine
int l_forward_local_port(lua_State* L) {
  lua_pushinteger(L, check_forward(L).local_port);
  return 1;
}

// fwd:close(): stops listening and closes its connections (idempotent)
int l_forward_close(lua_State* L) {
  close_forward(check_forward(L));
  return 0;
}

// fwd:stats() -> {open=, accepted=, failed=, bytes_in=, bytes_out=, closed=, last_error=}
int l_forward_stats(lua_State* L) {
  Forward& f = check_forward(L);
  lua_createtable(L, 0, 7);
  set_number(L, "open", static_cast<double>(f.links.size()));
  set_number(L, "accepted", static_cast<double>(f.accepted));
  set_number(L, "failed", static_cast<double>(f.failed));
  set_number(L, "bytes_in", static_cast<double>(f.bytes_in));
  set_number(L, "bytes_out", static_cast<double>(f.bytes_out));
  lua_pushboolean(L, f.closed);
  lua_setfield(L, -2, "closed");
  if (!f.last_error.empty()) set_string(L, "last_error", f.last_error);
  return 1;
}

// client.endpoint() -> the API URL in use ("" until the first call made the client)
int l_endpoint(lua_State* L) {
  lua::push(L, client_of(L)->config().api_url);
  return 1;
}

template <class T>
void new_metatable(lua_State* L, const luaL_Reg* methods) {
  luaL_newmetatable(L, T::kTypeName);
  lua_pushcfunction(L, lua::gc_userdata<T>);
  lua_setfield(L, -2, "__gc");
  if (methods) {
    lua_newtable(L);
    luaL_register(L, nullptr, methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

}  // namespace

void open_client(lua_State* L, asio::io_context& io, ClientConfigSource source) {
  new_metatable<ClientState>(L, nullptr);
  lua::new_userdata<ClientState>(L, io, std::move(source));
  lua_setfield(L, LUA_REGISTRYINDEX, kClientKey);

  static const luaL_Reg process_methods[] = {{"next", lua::guarded<l_process_next>},
                                             {"write", lua::guarded<l_process_write>},
                                             {"close_stdin", lua::guarded<l_process_close_stdin>},
                                             {"signal", lua::guarded<l_process_signal>},
                                             {"resize", lua::guarded<l_process_resize>},
                                             {"detach", lua::guarded<l_process_detach>},
                                             {"session_id", lua::guarded<l_process_session_id>},
                                             {"info", lua::guarded<l_process_info>},
                                             {"close", lua::guarded<l_process_close>},
                                             {nullptr, nullptr}};
  new_metatable<Process>(L, process_methods);
  static const luaL_Reg events_methods[] = {{"next", lua::guarded<l_events_next>},
                                            {nullptr, nullptr}};
  new_metatable<Events>(L, events_methods);
  static const luaL_Reg reader_methods[] = {{"next", lua::guarded<l_reader_next>},
                                            {"close", lua::guarded<l_reader_close>},
                                            {"info", lua::guarded<l_reader_info>},
                                            {nullptr, nullptr}};
  new_metatable<Reader>(L, reader_methods);
  static const luaL_Reg tunnel_methods[] = {{"read", lua::guarded<l_tunnel_read>},
                                            {"write", lua::guarded<l_tunnel_write>},
                                            {"close", lua::guarded<l_tunnel_close>},
                                            {"info", lua::guarded<l_tunnel_info>},
                                            {nullptr, nullptr}};
  new_metatable<TunnelHandle>(L, tunnel_methods);
  static const luaL_Reg ports_methods[] = {{"next", lua::guarded<l_ports_next>},
                                           {"close", lua::guarded<l_ports_close>},
                                           {nullptr, nullptr}};
  new_metatable<PortsHandle>(L, ports_methods);
  static const luaL_Reg forward_methods[] = {{"local_port", lua::guarded<l_forward_local_port>},
                                             {"close", lua::guarded<l_forward_close>},
                                             {"stats", lua::guarded<l_forward_stats>},
                                             {nullptr, nullptr}};
  new_metatable<ForwardHandle>(L, forward_methods);

  static const luaL_Reg functions[] = {
      {"create", lua::guarded<l_create>},
      {"get", lua::guarded<l_get>},
      {"list", lua::guarded<l_list>},
      {"update", lua::guarded<l_update>},
      {"delete", lua::guarded<l_delete>},
      {"restart", lua::guarded<l_restart>},
      {"check", lua::guarded<l_check>},
      {"run", lua::guarded<l_run>},
      {"spawn", lua::guarded<l_spawn>},
      {"checkpoint", lua::guarded<l_checkpoint>},
      {"restore", lua::guarded<l_restore>},
      {"checkpoints", lua::guarded<l_checkpoints>},
      {"get_checkpoint", lua::guarded<l_get_checkpoint>},
      {"delete_checkpoint", lua::guarded<l_delete_checkpoint>},
      {"read_file", lua::guarded<l_read_file>},
      {"open_file", lua::guarded<l_open_file>},
      {"write_file", lua::guarded<l_write_file>},
      {"upload_file", lua::guarded<l_upload_file>},
      {"list_dir", lua::guarded<l_list_dir>},
      {"stat", lua::guarded<l_stat>},
      {"remove", lua::guarded<l_remove>},
      {"rename", lua::guarded<l_rename>},
      {"copy", lua::guarded<l_copy>},
      {"chmod", lua::guarded<l_chmod>},
      {"chown", lua::guarded<l_chown>},
      {"local_tree", lua::guarded<l_local_tree>},
      {"local_stat", lua::guarded<l_local_stat>},
      {"local_mkdir", lua::guarded<l_local_mkdir>},
      {"local_chmod", lua::guarded<l_local_chmod>},
      {"fnmatch", lua::guarded<l_fnmatch>},
      {"services", lua::guarded<l_services>},
      {"service", lua::guarded<l_service>},
      {"put_service", lua::guarded<l_put_service>},
      {"start_service", lua::guarded<l_service_call<ServiceCall::start>>},
      {"stop_service", lua::guarded<l_service_call<ServiceCall::stop>>},
      {"restart_service", lua::guarded<l_service_call<ServiceCall::restart>>},
      {"service_logs", lua::guarded<l_service_call<ServiceCall::logs>>},
      {"delete_service", lua::guarded<l_delete_service>},
      {"signal_service", lua::guarded<l_signal_service>},
      {"sessions", lua::guarded<l_sessions>},
      {"attach", lua::guarded<l_attach>},
      {"kill_session", lua::guarded<l_kill_session>},
      {"network_policy", lua::guarded<l_network_policy>},
      {"set_network_policy", lua::guarded<l_set_network_policy>},
      {"policy", lua::guarded<l_policy>},
      {"set_policy", lua::guarded<l_set_policy>},
      {"delete_policy", lua::guarded<l_delete_policy>},
      {"tunnel", lua::guarded<l_tunnel>},
      {"watch_ports", lua::guarded<l_watch_ports>},
      {"forward", lua::guarded<l_forward>},
      {"endpoint", lua::guarded<l_endpoint>},
      {nullptr, nullptr}};
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_newtable(L);
  luaL_register(L, nullptr, functions);
  lua_setfield(L, -2, "spritescript.client");
  lua_pop(L, 1);
}

}  // namespace spritescript::bindings
