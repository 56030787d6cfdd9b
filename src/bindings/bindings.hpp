// Entry points of the Lua bindings. The host creates the lua_State and the
// io_context and calls these; nothing else in src/host touches the Lua API of
// a binding directly.
#pragma once

#include <functional>

#include "client/config.hpp"

struct lua_State;
namespace boost::asio {
class io_context;
}

namespace spritescript::bindings {

// `spritescript.core`: the event loop as Lua sees it (poll, ops, timers,
// monotonic time, Ctrl-C), plus built-in module lookup and small OS helpers.
// Installs the SIGINT handler for this state.
void open_core(lua_State* L, boost::asio::io_context& io);

// `sprites.json`: Boost.JSON backed encode/decode.
void open_json(lua_State* L);

// Where the client's configuration comes from, asked at its first call:
// the host reads the environment and, with no token, finds or starts the
// local engine (bindings do not depend on the engine).
using ClientConfigSource = std::function<client::Config()>;

// `spritescript.client`: the Sprites client as ops (src/bindings/client.cpp).
void open_client(lua_State* L, boost::asio::io_context& io, ClientConfigSource source);

// `spritescript.lineedit`: the REPL's line reading (libedit on a terminal,
// plain lines otherwise), history, completion and Ctrl-C, on the loop
// (src/bindings/lineedit.cpp).
void open_lineedit(lua_State* L, boost::asio::io_context& io);

// `spritescript.terminal`: raw mode, window size and changes, stdin reads
// as ops (src/bindings/terminal.cpp; the console's).
void open_terminal(lua_State* L, boost::asio::io_context& io);

}  // namespace spritescript::bindings
