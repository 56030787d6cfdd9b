// JSON models of the Sprites API as a client reads and writes them
// (shared/spec/sprites-api.md §2, §3.2, §5, §10, §11): sprites, list pages,
// exec options as a query, sessions, kill events, filesystem entries and
// answers, services, the network policy (§8). Parsing is lenient the way the
// SDKs are (missing optional fields take defaults, unknown fields are kept
// in `json`); a body that is not the right shape is a ModelError. Pure.
#pragma once

#include "proto/network_policy.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace spritescript::proto {

// A response body that is not what the API promises.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct UrlSettings {
  std::string auth;            // "sprite" | "public"; empty: not set
  std::string private_access;  // "admins" | "org_users"; empty: not set
};

struct Sprite {
  std::string name;  // always present
  std::string id;
  std::string organization;  // `organization`, else `org_slug`
  std::string status;        // cold | warm | running (unknown values kept)
  std::string url;
  UrlSettings url_settings;
  std::vector<std::string> labels;
  std::string created_at;  // RFC 3339 as sent
  std::string updated_at;
  std::string last_running_at;  // when it last ran ("" when never or not sent)
  std::string json;  // the whole object as received
};
Sprite parse_sprite(std::string_view body);

struct SpritePage {
  std::vector<Sprite> sprites;
  bool has_more = false;
  std::string next_continuation_token;
  int running = 0, warm = 0, cold = 0;
};
SpritePage parse_sprite_page(std::string_view body);

struct CreateSpriteRequest {
  std::string name;
  std::vector<std::string> labels;
  std::optional<UrlSettings> url_settings;
  std::map<std::string, std::string> environment;
  bool wait_for_capacity = false;
};
std::string to_json(const CreateSpriteRequest& request);

struct UpdateSpriteRequest {
  std::optional<UrlSettings> url_settings;
  std::optional<std::vector<std::string>> labels;  // replaces the set; empty clears
};
std::string to_json(const UpdateSpriteRequest& request);

// What to run (§3.2). `argv` empty with a session id set means attach.
struct ExecOptions {
  std::vector<std::string> argv;
  std::vector<std::pair<std::string, std::string>> env;
  std::string dir;
  bool tty = false;
  int cols = 0, rows = 0;  // 0: server default (80x24)
  bool stdin = true;
  std::optional<std::chrono::nanoseconds> max_run_after_disconnect;
};
// The query string (without '?') for a new command: cmd repeated, path,
// stdin, and the rest when set. Values are percent-encoded.
std::string exec_query(const ExecOptions& options);

struct SessionEntry {
  std::string id;  // digits; integers are accepted and turned into strings
  std::string command;
  std::string workdir;
  std::string created;
  bool is_active = false;
  bool tty = false;
  double bytes_per_second = 0;
};
std::vector<SessionEntry> parse_sessions(std::string_view body);

// One line of the kill endpoint's NDJSON (§5.2), or of another progress stream.
struct ProgressEvent {
  std::string type;     // signal, timeout, exited, killed, info, error, complete, ...
  std::string message;  // `message`, else `data` (checkpoints, service output), else `error`
  std::optional<int> exit_code;
  std::optional<std::int64_t> timestamp;  // services: Unix milliseconds (§11.1)
  std::string json;                       // the line as received
};
// nullopt when the line is not a JSON object (the SDKs skip such lines).
std::optional<ProgressEvent> parse_progress_event(std::string_view line);

// A checkpoint (§7.1). `create_time` also from the older `created_at`.
struct Checkpoint {
  std::string id;
  std::string create_time;
  std::string comment;
  std::vector<std::string> history;
  bool is_auto = false;
  std::string source_id;
  std::string health;
  bool current = false;  // the local engine's marker: the one last restored
};
Checkpoint parse_checkpoint(std::string_view body);
// A top-level JSON array (§7.3).
std::vector<Checkpoint> parse_checkpoints(std::string_view body);
// "Checkpoint v8 created" -> "v8" (§16 item 25); "" when it does not say.
std::string checkpoint_id_in(std::string_view complete_text);

// --- filesystem (§10) ---

// One entry of fs/list (§10.1). `mode` is the permission bits from the octal
// string ("0644"); a missing or malformed one falls back to 0644, or 0755
// for a directory, as both SDKs do.
struct FsEntry {
  std::string name;
  std::string path;  // absolute
  std::string type;  // file | directory | symlink (unknown values kept)
  std::int64_t size = 0;
  unsigned mode = 0;
  std::string mod_time;  // `modTime`, RFC 3339 as sent
  bool is_dir = false;   // `isDir`
};

struct FsListing {
  std::string path;  // the listed path, absolute ("" when the server omits it)
  std::vector<FsEntry> entries;
};
FsListing parse_fs_listing(std::string_view body);

// fs/write's answer {"path","size","mode"}.
struct FsWritten {
  std::string path;
  std::int64_t size = 0;
  unsigned mode = 0;
};
FsWritten parse_fs_written(std::string_view body);

// fs/delete's `deleted` paths, parents before children.
std::vector<std::string> parse_fs_deleted(std::string_view body);

// fs/rename's {"source","dest"}, and each pair of fs/copy's `copied`.
struct FsMove {
  std::string source;
  std::string dest;
};
FsMove parse_fs_renamed(std::string_view body);

struct FsCopied {
  std::vector<FsMove> copied;
  std::int64_t total_bytes = 0;  // `totalBytes`: regular files' bytes
};
FsCopied parse_fs_copied(std::string_view body);

// One of chmod's or chown's `affected` paths.
struct FsChange {
  std::string path;
  std::optional<unsigned> mode;          // chmod
  std::optional<std::int64_t> uid, gid;  // chown
};
std::vector<FsChange> parse_fs_changes(std::string_view body);

// --- services (§11) ---

struct ServiceDefinition {
  std::string cmd;  // the executable only
  std::vector<std::string> args;
  std::map<std::string, std::string> env;  // added to the base environment
  std::string dir;                         // "" : the server's default
  std::vector<std::string> needs;
  std::optional<int> http_port;
};
// The PUT body: `cmd` always, the rest when set (as Go, empty lists are
// left out; no `http_port` means none).
std::string to_json(const ServiceDefinition& definition);

struct ServiceState {
  std::string name;
  std::string status;  // stopped | starting | running | stopping | failed (unknown kept)
  std::optional<int> pid;
  std::string started_at;  // RFC 3339; "" when absent
  std::string error;       // when failed
  int restart_count = 0;
  std::string next_restart_at;
};

struct Service : ServiceDefinition {
  std::string name;  // always present
  std::optional<ServiceState> state;
  std::string json;  // the whole object as received
};
Service parse_service(std::string_view body);
// A JSON array, or {"services": [...]} (JS accepts both, §11.2).
std::vector<Service> parse_services(std::string_view body);

// --- policies (§8) ---

// GET policy/network's answer, read leniently as the SDKs do: `rules`
// missing or null is no rules; each rule's `domain`, `action` and
// `include` are kept as sent (unknown fields dropped, nothing validated:
// the server decides what is valid). A body that is not an object, rules
// that are not an array, or a rule that is not an object: ModelError.
NetworkPolicy parse_network_policy_body(std::string_view body);
// POST policy/network's body {"rules":[...]}: each rule as given, its
// empty fields left out (as Go sends it). Unlike network_policy.hpp's
// to_json, nothing is dropped or fixed: an invalid rule reaches the
// server, which says what is wrong with it.
std::string network_policy_body(const NetworkPolicy& policy);

// Percent-encodes a query value or path segment (RFC 3986 unreserved kept).
std::string percent_encode(std::string_view text);

}  // namespace spritescript::proto
