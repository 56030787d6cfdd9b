// `spritescript agent`: PID 1 of a sprite's sandbox. The engine starts it
// (never a user) with one end of a SOCK_SEQPACKET socket pair as fd 3; see
// agent_protocol.hpp for what travels on it.
#pragma once

#include <string>

namespace spritescript::engine {

struct AgentOptions {
  int socket_fd = 3;
  std::string sprite_dir;  // absolute
  std::string hostname;
  bool isolate = true;  // false: --sandbox=none (host processes, no isolation)
};

// Returns the process exit code once the engine closes its end.
int agent_main(const AgentOptions& options);

}  // namespace spritescript::engine
