#include "engine/store.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace json = boost::json;
namespace fs = std::filesystem;

namespace spritescript::engine {
namespace {

[[noreturn]] void fail(const std::string& what, const fs::path& path) {
  throw std::runtime_error(what + " " + path.string() + ": " + std::strerror(errno));
}

void fsync_path(const fs::path& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) fail("cannot open", path);
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail("cannot fsync", path);
}

}  // namespace

json::object to_json(const Sprite& s) {
  json::object o;
  o["id"] = s.id;
  o["name"] = s.name;
  o["status"] = s.status;
  json::object url_settings{{"auth", s.url_auth}};
  if (s.private_access) url_settings["private_access"] = *s.private_access;
  o["url_settings"] = std::move(url_settings);
  json::array labels;
  for (const auto& l : s.labels) labels.emplace_back(l);
  o["labels"] = std::move(labels);
  json::object env;
  for (const auto& [k, v] : s.environment) env[k] = v;
  o["environment"] = std::move(env);
  o["created_at"] = s.created_at;
  o["updated_at"] = s.updated_at;
  return o;
}

namespace {

std::string str(const json::object& o, std::string_view key, std::string_view fallback = {}) {
  const json::value* v = o.if_contains(key);
  return std::string(v && v->is_string() ? std::string_view(v->as_string()) : fallback);
}

Sprite from_json(const json::object& o) {
  Sprite s;
  s.id = str(o, "id");
  s.name = str(o, "name");
  s.status = str(o, "status", "cold");
  if (const json::value* u = o.if_contains("url_settings"); u && u->is_object()) {
    s.url_auth = str(u->as_object(), "auth", "sprite");
    if (u->as_object().contains("private_access")) {
      s.private_access = str(u->as_object(), "private_access");
    }
  }
  if (const json::value* l = o.if_contains("labels"); l && l->is_array()) {
    for (const auto& item : l->as_array()) {
      if (item.is_string()) s.labels.emplace_back(item.as_string());
    }
  }
  if (const json::value* e = o.if_contains("environment"); e && e->is_object()) {
    for (const auto& [k, v] : e->as_object()) {
      if (v.is_string()) s.environment[std::string(k)] = std::string(v.as_string());
    }
  }
  s.created_at = str(o, "created_at");
  s.updated_at = str(o, "updated_at");
  return s;
}

}  // namespace

std::string check_sprite_name(const std::string& name) {
  if (name.empty() || name.size() > 63) return "a sprite name has 1 to 63 characters";
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) {
      return "a sprite name uses only lowercase letters, digits and '-'";
    }
  }
  if (name.front() == '-' || name.back() == '-') {
    return "a sprite name cannot start or end with '-'";
  }
  return {};
}

void write_file_atomically(const fs::path& path, const std::string& contents, unsigned mode,
                           bool durable) {
  fs::path tmp = path;
  tmp += ".tmp-" + random_hex(4);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) fail("cannot create", tmp);
  std::size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(tmp.c_str());
      fail("cannot write", tmp);
    }
    done += static_cast<std::size_t>(n);
  }
  if ((durable && ::fsync(fd) != 0) || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    fail("cannot sync", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    fail("cannot rename into", path);
  }
  if (durable) fsync_path(path.parent_path(), O_RDONLY | O_DIRECTORY);
}

std::string random_hex(std::size_t bytes) {
  std::string raw(bytes, '\0');
  std::size_t got = 0;
  while (got < bytes) {
    ssize_t n = ::getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
    got += static_cast<std::size_t>(n);
  }
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char c : raw) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

Store::Store(const fs::path& state_dir) : root_(state_dir / "sprites") {
  fs::create_directories(root_);
  for (const auto& entry : fs::directory_iterator(root_)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory()) continue;
    if (name.rfind(".trash-", 0) == 0) {  // a delete that was interrupted
      fs::remove_all(entry.path());
      continue;
    }
    std::ifstream in(entry.path() / "sprite.json");
    if (!in) continue;  // a create that never completed
    std::ostringstream text;
    text << in.rdbuf();
    json::error_code ec;
    json::value doc = json::parse(text.str(), ec);
    if (ec || !doc.is_object()) {
      throw std::runtime_error("corrupt sprite metadata: " +
                               (entry.path() / "sprite.json").string());
    }
    Sprite s = from_json(doc.as_object());
    if (s.name == name) sprites_[name] = std::move(s);
  }
}

fs::path Store::dir(const std::string& name) const {
  return root_ / name;
}

const Sprite* Store::get(const std::string& name) const {
  auto it = sprites_.find(name);
  return it == sprites_.end() ? nullptr : &it->second;
}

std::vector<const Sprite*> Store::list(const std::string& prefix, const std::string& after) const {
  std::vector<const Sprite*> out;
  auto it = sprites_.lower_bound(prefix);
  if (!after.empty()) {
    auto past = sprites_.upper_bound(after);
    if (past != sprites_.end() && (it == sprites_.end() || past->first > it->first)) it = past;
    if (past == sprites_.end()) it = past;
  }
  for (; it != sprites_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    out.push_back(&it->second);
  }
  return out;
}

const Sprite& Store::put(Sprite sprite) {
  fs::path sprite_dir = dir(sprite.name);
  fs::create_directories(sprite_dir);
  write_file_atomically(sprite_dir / "sprite.json", json::serialize(to_json(sprite)) + "\n");
  Sprite& slot = sprites_[sprite.name];
  slot = std::move(sprite);
  return slot;
}

bool Store::remove(const std::string& name) {
  auto it = sprites_.find(name);
  if (it == sprites_.end()) return false;
  // Rename first: the sprite is gone at once and for good, even if the
  // engine dies while its files are being deleted (finished at next start).
  fs::path trash = root_ / (".trash-" + name + "-" + random_hex(4));
  fs::rename(dir(name), trash);
  fsync_path(root_, O_RDONLY | O_DIRECTORY);
  sprites_.erase(it);
  std::error_code ec;
  fs::remove_all(trash, ec);
  return true;
}

}  // namespace spritescript::engine
