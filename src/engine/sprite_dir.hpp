// Where a sprite's things live under <state dir>/sprites/NAME/ (host side).
// One place for the layout, shared by the sandbox, checkpoints, services and
// the filesystem API (docs/engine.md, "State and crash safety").
#pragma once

#include <filesystem>

namespace spritescript::engine::sprite_dir {

namespace fs = std::filesystem;

// The sprite's writable layer: overlay uppers (usr etc opt var ...) and its
// own directories (home root tmp mnt media).
inline fs::path layer(const fs::path& dir) {
  return dir / "fs" / "layer";
}
// Overlay scratch, emptied at every sandbox start.
inline fs::path work(const fs::path& dir) {
  return dir / "fs" / "work";
}
// Finished checkpoints, one tree per id; read-only in the sprite at
// /.sprite/checkpoints.
inline fs::path checkpoints(const fs::path& dir) {
  return dir / "checkpoints";
}
// Service logs; read-only in the sprite at /.sprite/logs/services.
inline fs::path service_logs(const fs::path& dir) {
  return dir / "logs" / "services";
}

// The sprite's policies (network.json, privileges.json, resources.json):
// sprite configuration, not disk, so a restore leaves them as they are;
// read-only in the sprite at /.sprite/policy.
inline fs::path policy(const fs::path& dir) {
  return dir / "policy";
}

}  // namespace spritescript::engine::sprite_dir
