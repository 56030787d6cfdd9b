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
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bindings/bindings.hpp"
#include "bindings/lua_helpers.hpp"
#include "bindings/op.hpp"
#include "client/client.hpp"

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

struct ClientState {
  static constexpr const char* kTypeName = "spritescript.client.state";
  ClientState(asio::io_context& io, ClientConfigSource source)
      : io(io), source(std::move(source)) {}
  asio::io_context& io;
  ClientConfigSource source;
  std::shared_ptr<Client> client;  // made at the first call
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
  std::string kind_, message_;
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

// p:close(): drops the connection now (the scope ended; the engine keeps
// the command for max_run_after_disconnect, then ends it).
int l_process_close(lua_State* L) {
  Process& p = check_process(L);
  if (p.state && !p.state->exited) p.state->process->abort();
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
                                             {"close", lua::guarded<l_process_close>},
                                             {nullptr, nullptr}};
  new_metatable<Process>(L, process_methods);
  static const luaL_Reg events_methods[] = {{"next", lua::guarded<l_events_next>},
                                            {nullptr, nullptr}};
  new_metatable<Events>(L, events_methods);

  static const luaL_Reg functions[] = {{"create", lua::guarded<l_create>},
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
                                       {"endpoint", lua::guarded<l_endpoint>},
                                       {nullptr, nullptr}};
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_newtable(L);
  luaL_register(L, nullptr, functions);
  lua_setfield(L, -2, "spritescript.client");
  lua_pop(L, 1);
}

}  // namespace spritescript::bindings
