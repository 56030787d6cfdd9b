// `spritescript serve`: the local engine's entry point.
#pragma once

#include <string>
#include <vector>

namespace spritescript::engine {

struct ServeOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
  std::string state_dir;               // empty: $XDG_DATA_HOME/spritescript/engine
  std::string token;                   // empty: read or create <state_dir>/token
  bool isolate = true;                 // false: --sandbox=none (no isolation, loudly)
  std::string idle_timeout = "30s";    // running -> warm (Go duration)
  std::string cold_timeout = "10m";    // warm -> cold
  int auto_checkpoints = 3;            // kept per sprite; 0: none taken
  // "NAME=IP[,IP...]": what sprites' lookups of NAME answer, and where their
  // proxy connections to it go, even on the host's loopback (tests).
  std::vector<std::string> resolve;
};

// Runs until SIGINT or SIGTERM; returns the process exit code. Prints one
// line "listening on http://HOST:PORT" on stdout once it accepts requests.
// Also refuses (exit 1) when another engine already serves the state dir.
int serve(const ServeOptions& options);

// The local engine serving a state dir, as a client needs it.
struct LocalEngine {
  std::string url;  // http://127.0.0.1:PORT
  std::string token;
  long pid = 0;
  std::string state_dir;
  bool started = false;  // this call started it
};

// Finds the engine serving `state_dir` (empty: the default), or starts one in
// the background (`spritescript serve`, output in <state>/engine.log) and
// waits until it listens. Safe when several clients race. With `notice`,
// says on stderr, in one line, that the local engine is in use. Throws
// std::runtime_error when it cannot.
LocalEngine ensure_local_engine(const std::string& state_dir, bool notice = true);

// `spritescript engine start|status|stop|logs [--state-dir DIR]`: status exits 0 when
// an engine serves the state dir, 3 when none does; stop sends it SIGTERM
// and waits until it has let go of the state dir.
int engine_command(const std::string& subcommand, const std::string& state_dir);

}  // namespace spritescript::engine
