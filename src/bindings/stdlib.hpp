// The Lua standard library compiled into the binary (lua/stdlib, compiled to
// LuaJIT bytecode by tools/embed_stdlib.cpp), so the binary alone is the
// whole program.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace spritescript::stdlib {

struct BuiltinModule {
  std::string_view name;      // require() name, e.g. "sprites.task"
  std::string_view path;      // relative to lua/stdlib, e.g. "sprites/task.lua"
  std::string_view bytecode;  // LuaJIT bytecode, with line info
};

extern const BuiltinModule kBuiltinModules[];
extern const std::size_t kBuiltinModuleCount;

struct Source {
  std::string chunkname;  // "@stdlib/sprites/task.lua", or the override file
  std::string code;       // bytecode, or source text from SPRITESCRIPT_STDLIB_DIR
};

// The source of built-in module `name`, or nullopt when there is none.
// SPRITESCRIPT_STDLIB_DIR=<dir> reads <dir>/<path> from disk instead, so the
// standard library can be edited without rebuilding.
std::optional<Source> find_builtin(std::string_view name);

}  // namespace spritescript::stdlib
