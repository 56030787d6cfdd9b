// The host runtime: one io_context, one lua_State with the bindings and the
// Lua standard library booted, and a way to run a script as the main task.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace spritescript::host {

struct RunOptions {
  std::optional<std::string> file;  // spritescript run FILE
  std::optional<std::string> code;  // spritescript -e CODE
  // A built-in command (spritescript ls, create, repl...): the module's
  // main(...) runs with `args`; a number it returns is the exit code.
  std::optional<std::string> module;
  bool trust = false;  // run --trust: run a project script without asking
  std::vector<std::string> args;    // the script's `...` and arg[1..n]
  bool verbose = false;             // print tracebacks
};

class Runtime {
 public:
  Runtime();
  ~Runtime();
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // Runs the script to completion; returns the process exit code.
  int run(const RunOptions& options);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace spritescript::host
