// `spritescript serve`: the local engine's entry point.
#pragma once

#include <string>

namespace spritescript::engine {

struct ServeOptions {
  std::string listen = "127.0.0.1:0";  // host:port; port 0 picks a free one
  std::string state_dir;               // empty: $XDG_DATA_HOME/spritescript/engine
  std::string token;                   // empty: read or create <state_dir>/token
};

// Runs until SIGINT or SIGTERM; returns the process exit code. Prints one
// line "listening on http://HOST:PORT" on stdout once it accepts requests.
int serve(const ServeOptions& options);

}  // namespace spritescript::engine
