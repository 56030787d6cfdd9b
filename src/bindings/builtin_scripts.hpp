// The built-in scripts: scripts/examples, embedded as text at build time
// (tools/embed_scripts.cmake). `spritescript scripts` lists them and `run
// NAME` runs them when no script directory has that name (docs/cli.md).
#pragma once

#include <cstddef>

namespace spritescript::bindings {

struct BuiltinScript {
  const char* name;  // nightly (from nightly.lua); nullptr ends the list
  const unsigned char* text;
  std::size_t size;
};

extern const BuiltinScript kBuiltinScripts[];

}  // namespace spritescript::bindings
