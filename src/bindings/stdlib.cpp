#include "bindings/stdlib.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace spritescript::stdlib {
namespace {

std::optional<Source> read_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return Source{"@" + file, text.str()};
}

// SPRITESCRIPT_STDLIB_DIR: a source tree to read modules from, for
// development (new modules there need no rebuild either).
std::optional<Source> find_in_override_dir(std::string_view name) {
  const char* dir = std::getenv("SPRITESCRIPT_STDLIB_DIR");
  if (!dir || !*dir) return std::nullopt;
  std::string rel(name);
  std::replace(rel.begin(), rel.end(), '.', '/');
  if (auto s = read_file(std::string(dir) + "/" + rel + ".lua")) return s;
  return read_file(std::string(dir) + "/" + rel + "/init.lua");
}

}  // namespace

std::optional<Source> find_builtin(std::string_view name) {
  if (auto s = find_in_override_dir(name)) return s;
  for (std::size_t i = 0; i < kBuiltinModuleCount; ++i) {
    const BuiltinModule& m = kBuiltinModules[i];
    if (m.name == name) return Source{"@stdlib/" + std::string(m.path), std::string(m.bytecode)};
  }
  return std::nullopt;
}

}  // namespace spritescript::stdlib
