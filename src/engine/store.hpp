// The local engine's sprite store: one directory per sprite under
// <state>/sprites/<name>/, its metadata in sprite.json. Every write is
// atomic (temp file, fsync, rename, fsync the directory), so a killed engine
// restarts with every sprite as it was after its last completed change.
#pragma once

#include <boost/json/object.hpp>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace spritescript::engine {

struct Sprite {
  std::string id;  // UUID-shaped, random
  std::string name;
  std::string status = "cold";  // cold | warm | running (spec §2.1.1)
  std::string url_auth = "sprite";
  std::optional<std::string> private_access;
  std::vector<std::string> labels;
  std::map<std::string, std::string> environment;
  std::string created_at;  // RFC 3339
  std::string updated_at;
};

// The sprite as stored (sprite.json); the API adds what depends on the
// server (organization, url) to the same object.
boost::json::object to_json(const Sprite& sprite);

// Why a sprite name is not acceptable, or "" when it is. Names follow DNS
// labels: 1-63 characters of a-z, 0-9 and '-', not starting or ending with
// '-' (docs/engine.md).
std::string check_sprite_name(const std::string& name);

class Store {
 public:
  // Loads every sprite under <state_dir>/sprites; creates the directories.
  explicit Store(const std::filesystem::path& state_dir);

  const Sprite* get(const std::string& name) const;
  // Sorted by name, those with `prefix`, starting after `after`.
  std::vector<const Sprite*> list(const std::string& prefix, const std::string& after) const;
  std::size_t size() const { return sprites_.size(); }

  // Persists then publishes; throws std::runtime_error when the disk write
  // fails (and then nothing changed).
  const Sprite& put(Sprite sprite);
  // Removes the sprite and all its data; false when there was none.
  bool remove(const std::string& name);
  // The sprite's directory (its metadata and its filesystem layer).
  std::filesystem::path dir(const std::string& name) const;

 private:
  std::filesystem::path root_;
  std::map<std::string, Sprite> sprites_;
};

// Writes `contents` to `path` atomically with the given permission bits:
// readers see the old file or the new one. `durable` also fsyncs the file
// and its directory, so it survives a power loss; without it, it survives
// the process being killed. (On ext4 an fsync commits the journal, which
// first writes out every dirty data block written before it: after a
// checkpoint copied 200 MB, that is 200 MB.)
void write_file_atomically(const std::filesystem::path& path, const std::string& contents,
                           unsigned mode = 0644, bool durable = true);

// A random identifier, 32 hex digits from the kernel's generator (tokens).
std::string random_hex(std::size_t bytes);

}  // namespace spritescript::engine
