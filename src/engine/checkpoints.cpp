#include "engine/checkpoints.hpp"
#include "proto/json_fields.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "engine/api.hpp"
#include "engine/blocking.hpp"
#include "engine/fleet.hpp"
#include "engine/layer_copy.hpp"
#include "engine/sprite_dir.hpp"
#include "engine/store.hpp"
#include "proto/values.hpp"

namespace fs = std::filesystem;
namespace json = boost::json;

namespace spritescript::engine {
namespace {

// In the layer's top directory, which the sprite never sees (only its
// subdirectories are mounted); not copied into checkpoints.
constexpr const char* kLayerInfo = ".spritescript-layer.json";

// Checkpoint files are made safe against the engine dying, not against a
// power loss: an fsync here would first write out every byte the copy
// wrote (ext4's ordered mode), which is most of a checkpoint's time.
constexpr bool kDurable = false;

struct Paths {
  explicit Paths(const fs::path& sprite)
      : layer(sprite_dir::layer(sprite)),
        trees(sprite_dir::checkpoints(sprite)),
        meta(sprite / "checkpoint-meta"),
        scratch(sprite / "checkpoint-tmp") {}
  fs::path layer, trees, meta, scratch;
};

// Which lineage the layer belongs to: `generation` changes when a restore
// replaces the layer (so no checkpoint reuses files by inode across it);
// `base` is the checkpoint it was restored from.
struct LayerInfo {
  std::string generation;
  std::string base;
  std::vector<std::string> history;
};

struct Checkpoint {
  std::string id;
  std::int64_t sequence = 0;
  std::string create_time;
  std::string comment;
  bool is_auto = false;
  std::string source_id;
  std::vector<std::string> history;
  std::string generation;
};

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&&) = delete;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

Fd open_dir(const fs::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0) {
    throw std::runtime_error("cannot open " + path.string() + ": " + std::strerror(errno));
  }
  return fd;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

using proto::fields::strings_of;

std::string string_of(const json::object& o, const char* key) {
  return proto::fields::text_of(o, key);
}

json::array to_array(const std::vector<std::string>& items) {
  json::array out;
  for (const auto& item : items) out.emplace_back(item);
  return out;
}

std::optional<json::object> parse_json_object(const std::string& text) {
  json::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

LayerInfo read_layer_info(const fs::path& layer) {
  LayerInfo info;
  if (auto o = parse_json_object(read_text(layer / kLayerInfo))) {
    info.generation = string_of(*o, "generation");
    info.base = string_of(*o, "base");
    info.history = strings_of(*o, "history");
  }
  return info;
}

void write_layer_info(const fs::path& layer, const LayerInfo& info) {
  json::object o{{"generation", info.generation}, {"base", info.base}};
  o["history"] = to_array(info.history);
  write_file_atomically(layer / kLayerInfo, json::serialize(o) + "\n", 0600, kDurable);
}

bool valid_id(const std::string& id) {
  static const std::regex pattern("v[0-9]{1,18}|auto-[0-9]{1,18}");
  return std::regex_match(id, pattern);
}

std::optional<Checkpoint> read_checkpoint(const fs::path& meta_file) {
  auto o = parse_json_object(read_text(meta_file));
  if (!o) return std::nullopt;
  Checkpoint c;
  c.id = string_of(*o, "id");
  if (!valid_id(c.id)) return std::nullopt;
  if (const auto* s = o->if_contains("sequence"); s && s->is_int64()) c.sequence = s->as_int64();
  c.create_time = string_of(*o, "create_time");
  c.comment = string_of(*o, "comment");
  if (const auto* a = o->if_contains("is_auto"); a && a->is_bool()) c.is_auto = a->as_bool();
  c.source_id = string_of(*o, "source_id");
  c.history = strings_of(*o, "history");
  c.generation = string_of(*o, "generation");
  return c;
}

// The stored form; the API's form (to_api_json) leaves out what is ours.
json::object to_stored_json(const Checkpoint& c) {
  json::object o{{"id", c.id},
                 {"sequence", c.sequence},
                 {"create_time", c.create_time},
                 {"comment", c.comment},
                 {"is_auto", c.is_auto},
                 {"source_id", c.source_id},
                 {"generation", c.generation}};
  o["history"] = to_array(c.history);
  return o;
}

json::object to_api_json(const Checkpoint& c, const std::string& current) {
  json::object o{{"id", c.id}, {"create_time", c.create_time}};
  if (!c.comment.empty()) o["comment"] = c.comment;
  if (!c.history.empty()) o["history"] = to_array(c.history);
  o["is_auto"] = c.is_auto;
  if (!c.source_id.empty()) o["source_id"] = c.source_id;
  // Ours: the checkpoint the sprite's filesystem was last restored from
  // (it cannot be deleted). SDKs ignore unknown fields.
  o["current"] = c.id == current;
  return o;
}

// Every committed checkpoint (metadata and tree both present), newest first.
std::vector<Checkpoint> load_all(const Paths& p) {
  std::vector<Checkpoint> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(p.meta, ec)) {
    const fs::path& file = entry.path();
    if (file.extension() != ".json" || file.filename() == "counters.json") continue;
    auto c = read_checkpoint(file);
    if (!c || file.stem() != c->id) continue;
    if (!fs::is_directory(p.trees / c->id, ec)) continue;
    out.push_back(std::move(*c));
  }
  std::sort(out.begin(), out.end(),
            [](const Checkpoint& a, const Checkpoint& b) { return a.sequence > b.sequence; });
  return out;
}

std::optional<Checkpoint> load_one(const Paths& p, const std::string& id) {
  if (!valid_id(id)) return std::nullopt;
  std::error_code ec;
  if (!fs::is_directory(p.trees / id, ec)) return std::nullopt;
  auto c = read_checkpoint(p.meta / (id + ".json"));
  if (!c || c->id != id) return std::nullopt;
  return c;
}

// Removes what a killed engine left half-done: trees being built, layers
// being swapped, metadata without a tree and trees without metadata.
// Never throws: recovery must not stop the engine from starting.
void recover(const Paths& p) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(p.scratch, ec)) {
    std::error_code ignored;
    fs::remove_all(entry.path(), ignored);
  }
  std::vector<fs::path> meta_files;
  for (const auto& entry : fs::directory_iterator(p.meta, ec)) meta_files.push_back(entry.path());
  for (const auto& file : meta_files) {
    std::error_code ignored;
    const std::string name = file.filename().string();
    if (name.find(".tmp-") != std::string::npos) {
      fs::remove(file, ignored);  // an atomic write that did not finish
      continue;
    }
    const std::string id = file.stem().string();
    if (name == "counters.json" || !valid_id(id)) continue;
    if (!fs::is_directory(p.trees / id, ignored)) fs::remove(file, ignored);
  }
  std::vector<fs::path> trees;
  for (const auto& entry : fs::directory_iterator(p.trees, ec)) trees.push_back(entry.path());
  for (const auto& tree : trees) {
    std::error_code ignored;
    const std::string id = tree.filename().string();
    if (!valid_id(id) || !fs::exists(p.meta / (id + ".json"), ignored)) {
      fs::remove_all(tree, ignored);
    }
  }
}

void make_dirs(const Paths& p) {
  for (const auto* dir : {&p.layer, &p.trees, &p.meta, &p.scratch}) {
    std::error_code ec;
    fs::create_directories(*dir, ec);
    if (ec) throw std::runtime_error("cannot create " + dir->string() + ": " + ec.message());
  }
}

std::string next_id(const Paths& p, bool is_auto, std::int64_t& sequence) {
  json::object counters;
  if (auto o = parse_json_object(read_text(p.meta / "counters.json"))) counters = std::move(*o);
  auto bump = [&counters](const char* key) {
    std::int64_t n = 0;
    if (const auto* v = counters.if_contains(key); v && v->is_int64()) n = v->as_int64();
    counters[key] = n + 1;
    return n;
  };
  const std::int64_t n = bump(is_auto ? "auto" : "v");
  sequence = bump("sequence");
  // Never reuse an id, even one whose checkpoint was deleted.
  write_file_atomically(p.meta / "counters.json", json::serialize(counters) + "\n", 0600, kDurable);
  return (is_auto ? "auto-" : "v") + std::to_string(n);
}

std::string now_rfc3339() {
  return proto::format_rfc3339(std::chrono::system_clock::now());
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string megabytes(std::uint64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return text;
}

struct Built {
  Checkpoint checkpoint;
  layer_copy::Stats stats;
  double seconds = 0;
  fs::path building;              // the copy, until committed
  layer_copy::Manifest manifest;  // what its files were copied from
};

// Blocking: copies the layer aside for a new checkpoint (commit() makes it
// one). `cancel` stops the copy (the engine is stopping).
Built copy_layer(const Paths& p, const std::string& comment, bool is_auto,
                 const std::atomic<bool>* cancel) {
  const auto started = std::chrono::steady_clock::now();
  make_dirs(p);
  recover(p);
  LayerInfo layer = read_layer_info(p.layer);
  if (layer.generation.empty()) {
    layer.generation = random_hex(8);
    write_layer_info(p.layer, layer);
  }
  Built built;
  Checkpoint& c = built.checkpoint;
  c.id = next_id(p, is_auto, c.sequence);
  c.create_time = now_rfc3339();
  c.comment = comment;
  c.is_auto = is_auto;
  c.source_id = layer.base;
  c.history = layer.history;
  c.generation = layer.generation;

  // The newest checkpoint of the same lineage lends its unchanged files.
  std::optional<Fd> reuse_root;
  layer_copy::Manifest reused_from;
  for (const auto& earlier : load_all(p)) {
    if (earlier.generation != layer.generation) continue;
    reused_from = layer_copy::parse_manifest(read_text(p.meta / (earlier.id + ".files")));
    reuse_root.emplace(::open((p.trees / earlier.id).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    break;
  }
  built.building = p.scratch / ("build-" + c.id);
  fs::create_directory(built.building);
  Fd source = open_dir(p.layer);
  Fd destination = open_dir(built.building);
  layer_copy::Options options;
  if (reuse_root && reuse_root->get() >= 0) {
    options.reuse_root = reuse_root->get();
    options.reused_from = &reused_from;
  }
  options.record = &built.manifest;
  options.record_before_ns = now_ns() - 1'000'000'000;
  options.skip_top = [](std::string_view name) { return name == kLayerInfo; };
  options.cancel = cancel;
  built.stats = layer_copy::copy_tree(source.get(), destination.get(), options);
  ::fchmod(destination.get(), 0755);
  built.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return built;
}

// Blocking: metadata first, the tree last (recover() drops either alone).
void commit(const Paths& p, const Built& built) {
  const Checkpoint& c = built.checkpoint;
  write_file_atomically(p.meta / (c.id + ".files"), layer_copy::serialize(built.manifest), 0600,
                        kDurable);
  write_file_atomically(p.meta / (c.id + ".json"), json::serialize(to_stored_json(c)) + "\n", 0600,
                        kDurable);
  if (::rename(built.building.c_str(), (p.trees / c.id).c_str()) != 0) {
    throw std::runtime_error("cannot commit the checkpoint: " + std::string(std::strerror(errno)));
  }
}

// Blocking: deletes checkpoint `id` (metadata first: from then on it does
// not exist; recover() finishes a cut delete).
void delete_checkpoint(const Paths& p, const std::string& id) {
  std::error_code ec;
  fs::remove(p.meta / (id + ".json"), ec);
  if (ec) throw std::runtime_error("cannot delete checkpoint " + id + ": " + ec.message());
  fs::remove(p.meta / (id + ".files"), ec);
  fs::remove_all(p.trees / id, ec);
}

// Blocking: keeps the newest `keep` automatic checkpoints (and the current one).
void prune_auto(const Paths& p, std::size_t keep) {
  const std::string current = read_layer_info(p.layer).base;
  std::size_t seen = 0;
  for (const auto& c : load_all(p)) {
    if (!c.is_auto || c.id == current) continue;
    if (++seen > keep) delete_checkpoint(p, c.id);
  }
}

// Blocking: a private copy of checkpoint `c`, ready to become the layer.
fs::path build_restored_layer(const Paths& p, const Checkpoint& c) {
  make_dirs(p);
  recover(p);
  fs::path building = p.scratch / ("restore-" + random_hex(6));
  fs::create_directory(building);
  {
    Fd source = open_dir(p.trees / c.id);
    Fd destination = open_dir(building);
    layer_copy::copy_tree(source.get(), destination.get());
    ::fchmod(destination.get(), 0755);
  }
  LayerInfo info;
  info.generation = random_hex(8);
  info.base = c.id;
  info.history.push_back(c.id);
  info.history.insert(info.history.end(), c.history.begin(), c.history.end());
  write_layer_info(building, info);
  return building;
}

// The one step that changes the sprite's filesystem: after it, `restored`
// holds the old layer (garbage).
void swap_in(const fs::path& restored, const fs::path& layer) {
  if (::renameat2(AT_FDCWD, restored.c_str(), AT_FDCWD, layer.c_str(), RENAME_EXCHANGE) == 0) {
    return;
  }
  if (errno == ENOENT && ::rename(restored.c_str(), layer.c_str()) == 0) {
    fs::create_directory(restored);  // nothing to throw away
    return;
  }
  throw std::runtime_error("cannot swap the restored layer in: " +
                           std::string(std::strerror(errno)));
}

std::string ndjson_line(const char* type, const char* key, const std::string& text) {
  json::object o{{"type", type}, {key, text}, {"time", now_rfc3339()}};
  return json::serialize(o) + "\n";
}

struct Unlock {
  AsyncMutex& mutex;
  ~Unlock() { mutex.unlock(); }
};

}  // namespace

CheckpointApi::CheckpointApi(Fleet& fleet, Store& store) : fleet_(fleet), store_(store) {
  for (const Sprite* sprite : store_.list("", "")) recover(Paths(store_.dir(sprite->name)));
  if (fleet_.options().auto_checkpoints > 0) {
    fleet_.on_paused = [this](const std::string& name) {
      asio::co_spawn(fleet_.executor(), auto_checkpoint(name), asio::detached);
    };
  }
}

CheckpointApi::~CheckpointApi() {
  fleet_.on_paused = nullptr;
  stopping_ = true;  // a copy in progress stops at its next file
  pool_.join();
}

asio::awaitable<void> CheckpointApi::auto_checkpoint(std::string name) {
  AsyncMutex& lock = fleet_.layer_lock(name);
  co_await lock.lock();
  Unlock unlock{lock};
  // Only while the sprite stays paused: then nothing writes to its layer.
  if (stopping_ || !store_.get(name) || fleet_.status(name) != "warm") co_return;
  const std::uint64_t wakes = fleet_.wakes(name);
  const Paths paths(store_.dir(name));
  const std::atomic<bool>* cancel = &stopping_;
  auto job = [paths, cancel]() { return copy_layer(paths, "", true, cancel); };
  Built built;
  std::string failure;
  try {
    built = co_await run_blocking<Built>(pool_, std::move(job));
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty() || stopping_) co_return;  // recover() removes the copy
  // Woken meanwhile (an exec, a file written): the copy may be torn.
  const bool keep = store_.get(name) && fleet_.wakes(name) == wakes;
  const auto keep_count = static_cast<std::size_t>(fleet_.options().auto_checkpoints);
  auto finish = [paths, built, keep, keep_count]() {
    if (!keep) {
      std::error_code ignored;
      fs::remove_all(built.building, ignored);
      return 0;
    }
    commit(paths, built);
    prune_auto(paths, keep_count);
    return 0;
  };
  try {
    co_await run_blocking<int>(pool_, std::move(finish));
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    std::fprintf(stderr, "spritescript: automatic checkpoint of %s failed: %s\n", name.c_str(),
                 failure.c_str());
  }
}

asio::awaitable<void> CheckpointApi::serve(HttpExchange& exchange, const proto::Target& target,
                                           const std::string& name) {
  const auto& seg = target.segments;
  const std::string& method = exchange.request().method;
  if (seg[3] == "checkpoint" && seg.size() == 4 && method == "POST") {
    co_await create(exchange, name);
  } else if (seg[3] == "checkpoints" && seg.size() == 4 && method == "GET") {
    co_await exchange.respond(list(target, name));
  } else if (seg[3] == "checkpoints" && seg.size() == 5 && method == "GET") {
    co_await exchange.respond(get(name, seg[4]));
  } else if (seg[3] == "checkpoints" && seg.size() == 5 && method == "DELETE") {
    co_await remove(exchange, name, seg[4]);
  } else if (seg[3] == "checkpoints" && seg.size() == 6 && seg[5] == "restore" &&
             method == "POST") {
    co_await restore(exchange, name, seg[4]);
  } else {
    co_await exchange.respond(
        api_error(404, "not_found",
                  "no such checkpoint endpoint: " + method + " " +
                      exchange.request().target.substr(0, exchange.request().target.find('?'))));
  }
}

HttpResponse CheckpointApi::list(const proto::Target& target, const std::string& name) const {
  const Paths p(store_.dir(name));
  const bool include_auto =
      proto::parse_query_bool(target.param("includeAuto").value_or("false")).value_or(false);
  const std::string history = target.param("history").value_or("");
  const std::string current = read_layer_info(p.layer).base;
  json::array out;
  for (const auto& c : load_all(p)) {
    if (c.is_auto && !include_auto) continue;
    if (!history.empty() && c.id != history &&
        std::find(c.history.begin(), c.history.end(), history) == c.history.end()) {
      continue;
    }
    out.emplace_back(to_api_json(c, current));
  }
  return {200, json::serialize(out)};
}

HttpResponse CheckpointApi::get(const std::string& name, const std::string& id) const {
  const Paths p(store_.dir(name));
  auto c = load_one(p, id);
  if (!c) return api_error(404, "not_found", "checkpoint " + id + " not found");
  return {200, json::serialize(to_api_json(*c, read_layer_info(p.layer).base))};
}

asio::awaitable<void> CheckpointApi::create(HttpExchange& exchange, const std::string& name) {
  std::string comment;
  const std::string& body = exchange.request().body;
  if (!body.empty()) {
    auto o = parse_json_object(body);
    if (!o) {
      co_await exchange.respond(api_error(
          400, "invalid_body", R"(the body must be a JSON object such as {"comment":"..."})"));
      co_return;
    }
    comment = string_of(*o, "comment");
  }
  auto hold = fleet_.hold(name);
  AsyncMutex& lock = fleet_.layer_lock(name);
  co_await lock.lock();
  Unlock unlock{lock};
  if (!co_await exchange.start_stream(200, "application/x-ndjson")) co_return;
  std::string line = ndjson_line("info", "data", "Creating checkpoint...");
  co_await exchange.write_chunk(line);

  // Live: the processes pause while the layer is copied, then go on.
  auto machine = fleet_.machine(name);
  const bool pause = machine && fleet_.status(name) == "running";
  if (pause) co_await machine->freeze_and_wait();
  line = ndjson_line("info", "data", "Saving filesystem state...");
  co_await exchange.write_chunk(line);
  const Paths paths(store_.dir(name));
  Built built;
  std::string failure;
  try {
    const std::atomic<bool>* cancel = &stopping_;
    auto job = [paths, comment, cancel]() {
      Built copy = copy_layer(paths, comment, false, cancel);
      commit(paths, copy);
      return copy;
    };
    built = co_await run_blocking<Built>(pool_, std::move(job));
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (pause && machine->up()) machine->thaw();
  if (!failure.empty()) {
    line = ndjson_line("error", "error", "checkpoint failed: " + failure);
    co_await exchange.write_chunk(line);
    co_await exchange.finish_stream();
    co_return;
  }
  const auto& s = built.stats;
  char summary[256];
  std::snprintf(summary, sizeof summary,
                "Saved %llu files in %.2f s: %s copied, %llu unchanged files shared with the "
                "previous checkpoint",
                static_cast<unsigned long long>(s.files), built.seconds,
                megabytes(s.bytes_copied).c_str(), static_cast<unsigned long long>(s.files_reused));
  line = ndjson_line("info", "data", summary);
  co_await exchange.write_chunk(line);
  // Clients parse the new id out of this exact wording (spec §16 item 25).
  line = ndjson_line("complete", "data", "Checkpoint " + built.checkpoint.id + " created");
  co_await exchange.write_chunk(line);
  co_await exchange.finish_stream();
}

asio::awaitable<void> CheckpointApi::restore(HttpExchange& exchange, const std::string& name,
                                             const std::string& id) {
  const Paths paths(store_.dir(name));
  auto checkpoint = load_one(paths, id);
  if (!checkpoint) {
    co_await exchange.respond(api_error(404, "not_found", "checkpoint " + id + " not found"));
    co_return;
  }
  auto hold = fleet_.hold(name);
  AsyncMutex& lock = fleet_.layer_lock(name);
  co_await lock.lock();
  Unlock unlock{lock};
  if (!co_await exchange.start_stream(200, "application/x-ndjson")) co_return;
  std::string line = ndjson_line("info", "data", "Restoring from checkpoint " + id + "...");
  co_await exchange.write_chunk(line);

  // The copy is made while the sprite still runs; it stops only for the swap.
  const auto started = std::chrono::steady_clock::now();
  const Checkpoint chosen = *checkpoint;
  fs::path restored;
  std::string failure;
  try {
    auto job = [paths, chosen]() { return build_restored_layer(paths, chosen); };
    restored = co_await run_blocking<fs::path>(pool_, std::move(job));
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (failure.empty()) {
    line = ndjson_line("info", "data", "Stopping processes and switching the filesystem...");
    co_await exchange.write_chunk(line);
    auto down = co_await fleet_.take_down(name);
    try {
      swap_in(restored, paths.layer);
    } catch (const std::exception& e) {
      failure = e.what();
    }
  }
  if (!failure.empty()) {
    // Nothing was swapped: the sprite keeps its filesystem as it was.
    line = ndjson_line("error", "error", "restore failed, the sprite is unchanged: " + failure);
    co_await exchange.write_chunk(line);
    co_await exchange.finish_stream();
    co_return;
  }
  // Start again at once: services come back, and the next exec is quick.
  std::string wake_failure;
  try {
    co_await fleet_.wake(name);
  } catch (const std::exception& e) {
    wake_failure = e.what();
  }
  if (!wake_failure.empty()) {
    line = ndjson_line("info", "data", "the sprite did not start again yet: " + wake_failure);
    co_await exchange.write_chunk(line);
  }
  char summary[128];
  std::snprintf(summary, sizeof summary, "Restored from checkpoint %s in %.2f s", id.c_str(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  line = ndjson_line("complete", "data", summary);
  co_await exchange.write_chunk(line);
  co_await exchange.finish_stream();
  // The old layer is garbage now; remove it while still holding the lock.
  auto cleanup = [restored]() {
    std::error_code ignored;
    fs::remove_all(restored, ignored);
    return 0;
  };
  co_await run_blocking<int>(pool_, std::move(cleanup));
}

asio::awaitable<void> CheckpointApi::remove(HttpExchange& exchange, const std::string& name,
                                            const std::string& id) {
  const Paths paths(store_.dir(name));
  AsyncMutex& lock = fleet_.layer_lock(name);
  co_await lock.lock();
  Unlock unlock{lock};
  if (!load_one(paths, id)) {
    co_await exchange.respond(api_error(404, "not_found", "checkpoint " + id + " not found"));
    co_return;
  }
  if (read_layer_info(paths.layer).base == id) {
    co_await exchange.respond(api_error(409, "checkpoint_in_use",
                                        "checkpoint " + id +
                                            " is the sprite's current one (its filesystem was "
                                            "restored from it); it cannot be deleted"));
    co_return;
  }
  auto job = [paths, id]() {
    delete_checkpoint(paths, id);
    return 0;
  };
  std::string failure;
  try {
    co_await run_blocking<int>(pool_, std::move(job));
  } catch (const std::exception& e) {
    failure = e.what();
  }
  if (!failure.empty()) {
    co_await exchange.respond(api_error(500, "internal", failure));
    co_return;
  }
  co_await exchange.respond({204, ""});
}

}  // namespace spritescript::engine
