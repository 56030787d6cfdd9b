// The asynchronous Sprites client (issue 4): every call of the API as an
// Asio awaitable, against api.sprites.dev or the local engine alike.
//
// * Errors are client::Error (errors.hpp), typed by kind.
// * Every call has a bounded default timeout (Config::timeouts), or the
//   CallOptions' own.
// * Idempotent calls retry on connection failures, 429 and 502/503/504
//   with jittered backoff; create never retries blindly (after an
//   ambiguous failure it asks whether the sprite exists).
// * Cancellation: co_spawn a call with a bound cancellation slot; a
//   terminal cancellation stops the I/O in progress and the call throws
//   Error(cancelled).
// * SPRITESCRIPT_TRACE=1 logs each request, its status and time on stderr,
//   never the token.
//
// One Client per io_context thread; it is not thread-safe.
#pragma once

#include "client/config.hpp"
#include "client/errors.hpp"
#include "client/transport.hpp"
#include "proto/exec_frames.hpp"
#include "proto/models.hpp"
#include "proto/ndjson.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spritescript::client {

struct CallOptions {
  std::optional<Millis> timeout;  // instead of the call kind's default
};

// Filesystem calls (spec §10): relative paths are resolved from
// `working_dir`, which is always sent (as both SDKs do; "" is "/"). A view,
// so that the options stay trivially copyable: GCC 12 breaks a
// non-trivial temporary (a defaulted `FsOptions options = {}` holding a
// std::string) in a coroutine's co_await expression. What it views must
// live until the call is done, as the name and path do.
struct FsOptions : CallOptions {
  std::string_view working_dir = "/";
};

// A stream of NDJSON progress events (kill, checkpoint, restore).
class EventStream {
 public:
  // With `error_fails`, an `error` event throws (ErrorKind::api, the
  // server's words) instead of being returned: checkpoint and restore.
  EventStream(std::unique_ptr<BodyStream> body, std::string op, bool error_fails = false);
  // The next event; nullopt at the end of the stream. Lines that are not
  // JSON objects are skipped (as the SDKs do).
  asio::awaitable<std::optional<proto::ProgressEvent>> next();

 private:
  proto::ProgressEvent checked(proto::ProgressEvent event) const;
  std::unique_ptr<BodyStream> body_;
  std::string op_;
  bool error_fails_;
  proto::NdjsonSplitter lines_;
  bool ended_ = false;
};

// A file being downloaded (Client::open_file): its bytes piece by piece as
// they arrive (the local engine sends 4 MiB chunks), never the whole file
// at once. Reading has no deadline of its own (cancel the reading task to
// stop); a response cut short throws Error(network). Dropping the reader
// early closes its connection.
class FileReader {
 public:
  FileReader(std::unique_ptr<BodyStream> body, std::string op);
  // The next piece (never empty); nullopt at the end of the file.
  asio::awaitable<std::optional<std::string>> next();
  std::uint64_t bytes_read() const { return bytes_; }
  // Content-Length when the server sent one (the engine sends chunked).
  std::optional<std::uint64_t> size() const { return size_; }

 private:
  std::unique_ptr<BodyStream> body_;
  std::string op_;
  std::uint64_t bytes_ = 0;
  std::optional<std::uint64_t> size_;
};

// A TCP connection to a port inside a sprite, over the proxy WebSocket
// (spec §9; Client::open_tunnel). One task reads; writes may come from
// another. The protocol has no half-close: close() ends both directions.
// Dropping the tunnel drops the connection. The Client must outlive it.
class Tunnel {
 public:
  Tunnel(std::shared_ptr<WebSocket> socket, std::string op, std::string target);
  ~Tunnel();
  Tunnel(const Tunnel&) = delete;
  Tunnel& operator=(const Tunnel&) = delete;

  // "host:port" as the server named it in its reply.
  const std::string& target() const { return target_; }
  // The next bytes from the target (never empty); nullopt when it closed
  // the connection (or after close()). Throws Error(network) when the
  // connection broke, the target's included (the server closes with 1011).
  asio::awaitable<std::optional<std::string>> read();
  // Sends `data` to the target (in 256 KiB messages); returns once sent,
  // so a slow target slows the writer down.
  asio::awaitable<void> write(std::string_view data);
  // Ends the tunnel with a close frame (once; best effort): the target
  // sees end-of-file; a pending read ends when the server answers the close.
  asio::awaitable<void> close();
  // Drops the connection at once; pending reads end (nullopt), writes fail.
  void abort();
  bool closed() const { return closed_; }
  std::uint64_t bytes_read() const { return bytes_read_; }
  std::uint64_t bytes_written() const { return bytes_written_; }

 private:
  std::shared_ptr<WebSocket> socket_;
  std::string op_;
  std::string target_;
  bool closed_ = false;  // closed or aborted here
  bool ended_ = false;   // the server closed
  std::uint64_t bytes_read_ = 0;
  std::uint64_t bytes_written_ = 0;
};

// A sprite's listening ports as they come and go (spec §6; Client::
// watch_ports): next() yields the ports that were listening when the watch
// started (all `opened`), then `opened` / `closed` events. Reading has no
// deadline (cancel the reading task, or close(), to stop); the transport's
// pings notice a dead peer.
class PortWatch {
 public:
  PortWatch(std::shared_ptr<WebSocket> socket, std::string op);
  ~PortWatch();
  PortWatch(const PortWatch&) = delete;
  PortWatch& operator=(const PortWatch&) = delete;

  // The next event; nullopt when the server ended the watch or after
  // close(). Throws Error(network) when the connection broke.
  asio::awaitable<std::optional<proto::PortEvent>> next();
  // Drops the connection; a pending next() returns nullopt.
  void close();
  bool closed() const { return closed_; }

  // Reads the port_list that starts every watch (Client::watch_ports).
  void take_list(std::vector<proto::PortEvent> ports);

 private:
  std::shared_ptr<WebSocket> socket_;
  std::string op_;
  std::vector<proto::PortEvent> pending_;  // the initial list, in order
  std::size_t next_pending_ = 0;
  bool closed_ = false;
  bool ended_ = false;
};

// What one piece of an exec's life looks like to the caller.
struct ExecEvent {
  enum class Type { output, exit, port };
  Type type = Type::output;
  proto::StreamId stream = proto::StreamId::stdout_data;  // output: stdout or stderr (TTY: stdout)
  std::string data;
  int exit_code = 0;
  proto::PortEvent port;
};

class Client;

// A running command over the exec WebSocket (spec §3). One task reads
// (next); any number may write.
//
// When the connection breaks before the exit, next() reattaches to the
// session and resumes the output where it stopped, when the server says
// where its replay starts (the local engine's `replay_offset`); otherwise,
// or when reattaching fails, it throws an error saying output may be
// incomplete. The Client must outlive the process.
class ExecProcess {
 public:
  ExecProcess(std::shared_ptr<WebSocket> socket, std::string op, bool tty, Client* client = nullptr,
              std::string sprite = {});
  ~ExecProcess();

  const proto::SessionInfo& session() const { return session_; }
  bool tty() const { return tty_; }
  bool exited() const { return exit_code_.has_value(); }
  std::optional<int> exit_code() const { return exit_code_; }

  // The next output, port notice, or the exit (last). Throws Error when the
  // connection broke before the exit (the message says output may be
  // incomplete).
  asio::awaitable<ExecEvent> next();
  asio::awaitable<void> write(std::string_view data);  // to stdin
  asio::awaitable<void> close_stdin();                 // non-TTY: stdin EOF
  asio::awaitable<void> resize(int cols, int rows);
  asio::awaitable<void> signal(std::string_view name);  // "TERM", "SIGINT", ...
  // Leaves the command running (the session stays attachable).
  asio::awaitable<void> detach();
  // Drops the connection at once (pending reads and writes fail); the
  // server treats it as a disconnect.
  void abort();

  // Reads the session_info that starts every exec connection.
  asio::awaitable<void> start();

  std::uint64_t output_bytes() const { return delivered_; }
  int reattaches() const { return reattaches_; }
  // Whether a broken connection may be resumed: not while input is being
  // fed (what was in flight would be lost and the command could wait for
  // it forever).
  void set_resumable(bool resumable) { resumable_ = resumable; }

 private:
  asio::awaitable<void> resume(const Error& broke);

  std::shared_ptr<WebSocket> socket_;  // shared with the close after the exit
  std::string op_;
  bool tty_;
  Client* client_;
  std::string sprite_;
  proto::SessionInfo session_;
  std::optional<int> exit_code_;
  std::vector<ExecEvent> early_;  // output that came before session_info
  bool closed_ = false;
  std::uint64_t delivered_ = 0;  // output bytes handed to the caller
  std::uint64_t skip_ = 0;       // replayed bytes the caller already has
  int reattaches_ = 0;
  bool resumable_ = true;
  // Sockets replaced by a reattach, kept until the process goes: a writer
  // may still be suspended in one of them.
  std::vector<std::shared_ptr<WebSocket>> retired_;
};

struct ExecResult {
  int exit_code = 0;
  std::string stdout_data;
  std::string stderr_data;
};

class Client {
 public:
  // `config.api_url` must be set (the host resolves the local engine).
  Client(asio::any_io_executor executor, Config config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const Config& config() const { return config_; }
  Transport& transport() { return *transport_; }

  // --- sprites (§2) ---
  asio::awaitable<proto::Sprite> create_sprite(const proto::CreateSpriteRequest& request,
                                               CallOptions options = {});
  asio::awaitable<proto::SpritePage> list_sprites(const std::string& prefix, int max_results = 50,
                                                  const std::string& continuation = {},
                                                  CallOptions options = {});
  // Every page, in order.
  asio::awaitable<std::vector<proto::Sprite>> list_all_sprites(const std::string& prefix,
                                                               CallOptions options = {});
  asio::awaitable<proto::Sprite> get_sprite(const std::string& name, CallOptions options = {});
  asio::awaitable<proto::Sprite> update_sprite(const std::string& name,
                                               const proto::UpdateSpriteRequest& request,
                                               CallOptions options = {});
  asio::awaitable<void> delete_sprite(const std::string& name, CallOptions options = {});
  asio::awaitable<void> upgrade_sprite(const std::string& name, CallOptions options = {});
  // restart and check answer JSON objects (§2.8, §2.9), returned as text.
  asio::awaitable<std::string> restart_sprite(const std::string& name, CallOptions options = {});
  asio::awaitable<std::string> check_sprite(const std::string& name, CallOptions options = {});

  // --- exec (§3, §4, §5) ---
  asio::awaitable<std::unique_ptr<ExecProcess>> exec(const std::string& name,
                                                     const proto::ExecOptions& options,
                                                     CallOptions call = {});
  asio::awaitable<std::unique_ptr<ExecProcess>> attach(const std::string& name,
                                                       const std::string& session_id,
                                                       CallOptions call = {});
  // Runs to the end over the WebSocket, feeding `stdin_data` then EOF (with
  // no stdin data the command starts with its stdin closed).
  asio::awaitable<ExecResult> run(const std::string& name, const proto::ExecOptions& options,
                                  std::string stdin_data = {}, CallOptions call = {});
  // The same over HTTP POST exec (non-TTY only).
  asio::awaitable<ExecResult> run_http(const std::string& name, const proto::ExecOptions& options,
                                       std::string stdin_data = {}, CallOptions call = {});
  asio::awaitable<std::vector<proto::SessionEntry>> list_sessions(const std::string& name,
                                                                  CallOptions options = {});
  // Signals the session (and SIGKILLs it after `timeout`, when set); the
  // events as they come. A session that already exited ends the stream at
  // once with no events (HTTP 410).
  asio::awaitable<std::unique_ptr<EventStream>> kill_session(
      const std::string& name, const std::string& session_id, const std::string& signal = "TERM",
      std::optional<std::chrono::nanoseconds> timeout = std::nullopt, CallOptions options = {});

  // --- checkpoints (spec §7) ---
  // The progress events as they come; an `error` event throws.
  asio::awaitable<std::unique_ptr<EventStream>> create_checkpoint(const std::string& name,
                                                                  const std::string& comment = {},
                                                                  CallOptions options = {});
  asio::awaitable<std::unique_ptr<EventStream>> restore_checkpoint(const std::string& name,
                                                                   const std::string& id,
                                                                   CallOptions options = {});
  // The whole stream: the new checkpoint's id; throws on an `error` event.
  asio::awaitable<std::string> checkpoint(const std::string& name, const std::string& comment = {},
                                          CallOptions options = {});
  asio::awaitable<void> restore(const std::string& name, const std::string& id,
                                CallOptions options = {});
  // Newest first; automatic ones only with `include_auto`.
  asio::awaitable<std::vector<proto::Checkpoint>> list_checkpoints(const std::string& name,
                                                                   bool include_auto = false,
                                                                   CallOptions options = {});
  asio::awaitable<proto::Checkpoint> get_checkpoint(const std::string& name, const std::string& id,
                                                    CallOptions options = {});
  asio::awaitable<void> delete_checkpoint(const std::string& name, const std::string& id,
                                          CallOptions options = {});

  // --- filesystem (spec §10) ---
  // Errors carry the errno name as code() and in the message ("ENOENT");
  // the kinds are in errors.hpp (ENOENT not_found, EEXIST conflict, ...).
  // Idempotent, so retried: read, write (the same bytes again), list,
  // stat, remove, chmod, chown. Rename and copy are sent once.

  // The whole file (up to 1 GiB; larger ones through open_file). Default
  // timeout Timeouts::files for the whole transfer.
  asio::awaitable<std::string> read_file(const std::string& name, const std::string& path,
                                         FsOptions options = {});
  // The file as a stream of pieces; the timeout bounds the answer's head
  // only. Not found etc. throw here, before the first piece.
  asio::awaitable<std::unique_ptr<FileReader>> open_file(const std::string& name,
                                                         const std::string& path,
                                                         FsOptions options = {});
  // Creates or truncates `path` with `data`. Without `mode`, a rewritten
  // file keeps its mode and a new one is 0644; missing parents are made
  // unless `mkdir_parents` is false. Default timeout Timeouts::files. The
  // body is sent from memory; write_file_from streams a local file.
  asio::awaitable<proto::FsWritten> write_file(const std::string& name, const std::string& path,
                                               std::string data,
                                               std::optional<unsigned> mode = std::nullopt,
                                               bool mkdir_parents = true, FsOptions options = {});
  // The same with the contents of the local file `local_path`, streamed:
  // it is read with plain read(2) in 256 KiB pieces as the connection
  // takes them, so memory stays flat whatever its size. Regular files only
  // (a directory, FIFO or device is usage); the size at the start is
  // sent, and a file that shrinks meanwhile fails the call (conflict).
  // Local failures carry the errno name as code() (ENOENT is not_found,
  // EACCES api). The reads block the thread briefly (page cache or disk).
  // Retried as write_file, from the first byte again.
  asio::awaitable<proto::FsWritten> write_file_from(const std::string& name,
                                                    const std::string& path,
                                                    const std::string& local_path,
                                                    std::optional<unsigned> mode = std::nullopt,
                                                    bool mkdir_parents = true,
                                                    FsOptions options = {});
  // A directory's children (all descendants with `recursive`), sorted by
  // name; a file gives its own entry.
  asio::awaitable<std::vector<proto::FsEntry>> list_dir(const std::string& name,
                                                        const std::string& path,
                                                        bool recursive = false,
                                                        FsOptions options = {});
  // The entry of `path` itself, as lstat: unlike the SDKs (which take the
  // first entry of a listing, a directory's first child), a directory is
  // looked up in its parent's listing, so an empty directory is found too.
  // `/` has no parent to list: its entry is made up (directory, 0755).
  asio::awaitable<proto::FsEntry> stat(const std::string& name, const std::string& path,
                                       FsOptions options = {});
  // Removes a file, symlink or empty directory (a tree with `recursive`;
  // a non-empty directory without it is conflict/ENOTEMPTY). The removed
  // paths, parents first.
  asio::awaitable<std::vector<std::string>> remove(const std::string& name, const std::string& path,
                                                   bool recursive = false, FsOptions options = {});
  asio::awaitable<proto::FsMove> rename(const std::string& name, const std::string& source,
                                        const std::string& dest, FsOptions options = {});
  // As cp: into `dest` when it is a directory; a directory needs
  // `recursive` (usage/EISDIR otherwise); `preserve_attrs` also keeps
  // owner and times.
  asio::awaitable<proto::FsCopied> copy(const std::string& name, const std::string& source,
                                        const std::string& dest, bool recursive = false,
                                        bool preserve_attrs = false, FsOptions options = {});
  asio::awaitable<std::vector<proto::FsChange>> chmod(const std::string& name,
                                                      const std::string& path, unsigned mode,
                                                      bool recursive = false,
                                                      FsOptions options = {});
  // `user` and `group`: names, or ids in digits; "" leaves it (one of them
  // is needed).
  asio::awaitable<std::vector<proto::FsChange>> chown(
      const std::string& name, const std::string& path, const std::string& user,
      const std::string& group = {}, bool recursive = false, FsOptions options = {});

  // --- services (spec §11) ---
  // Event streams give every event, `error` ones included (a service that
  // cannot start is still defined): each has `type` (started, stdout,
  // stderr, exit, stopping, stopped, error, complete), `message` (the
  // output or text), `exit_code`, `timestamp` (Unix ms). Default timeout
  // (to the stream's head, or the whole answer): Timeouts::lifecycle for
  // put/start/stop/restart/delete (they may wait for a stop), else request.
  asio::awaitable<std::vector<proto::Service>> list_services(const std::string& name,
                                                             CallOptions options = {});
  asio::awaitable<proto::Service> get_service(const std::string& name, const std::string& svc,
                                              CallOptions options = {});
  // Creates or replaces the definition and (re)starts it; its events for
  // `duration` (server default 5 s; 0: none), then `complete`. Retried as
  // an idempotent PUT.
  asio::awaitable<std::unique_ptr<EventStream>> put_service(
      const std::string& name, const std::string& svc, const proto::ServiceDefinition& definition,
      std::optional<std::chrono::nanoseconds> duration = std::nullopt, CallOptions options = {});
  asio::awaitable<std::unique_ptr<EventStream>> start_service(
      const std::string& name, const std::string& svc,
      std::optional<std::chrono::nanoseconds> duration = std::nullopt, CallOptions options = {});
  // SIGTERM, SIGKILL after `timeout` (server default 10 s). conflict when
  // it is already stopped.
  asio::awaitable<std::unique_ptr<EventStream>> stop_service(
      const std::string& name, const std::string& svc,
      std::optional<std::chrono::nanoseconds> timeout = std::nullopt, CallOptions options = {});
  asio::awaitable<std::unique_ptr<EventStream>> restart_service(
      const std::string& name, const std::string& svc,
      std::optional<std::chrono::nanoseconds> duration = std::nullopt, CallOptions options = {});
  // The last `lines` buffered events (all without), then new ones for
  // `duration` (none without), then `complete`.
  asio::awaitable<std::unique_ptr<EventStream>> service_logs(
      const std::string& name, const std::string& svc, std::optional<int> lines = std::nullopt,
      std::optional<std::chrono::nanoseconds> duration = std::nullopt, CallOptions options = {});
  asio::awaitable<void> delete_service(const std::string& name, const std::string& svc,
                                       CallOptions options = {});
  // "TERM", "SIGHUP", "9", ...; a TERM or KILL counts as a crash (the
  // service is restarted). conflict when it is not running.
  asio::awaitable<void> signal_service(const std::string& name, const std::string& svc,
                                       const std::string& signal, CallOptions options = {});

  // --- policies (spec §8) ---
  // The network policy: {"rules":[]} (unrestricted) for a new sprite.
  asio::awaitable<proto::NetworkPolicy> get_network_policy(const std::string& name,
                                                           CallOptions options = {});
  // Replaces the policy (no rules: unrestricted). The answer must be 204
  // exactly, as in both SDKs: a refusal is the server's Error (an invalid
  // policy is usage, HTTP 400, with its words), any other success status
  // protocol. The policy is sent as given (the server validates it).
  // Setting the same policy twice is setting it once: retried.
  asio::awaitable<void> set_network_policy(const std::string& name,
                                           const proto::NetworkPolicy& policy,
                                           CallOptions options = {});
  // The privileges policy ({"profile","devices","noNewPrivileges"}, camelCase
  // on the wire) and the resources policy ({"memory":{"limit_mb",
  // "autoscale"}}) as JSON text, in and out (§8.4). set_* returns the
  // object the server stored (what was sent when it answers no body);
  // delete_* goes back to the default. All retried (idempotent).
  asio::awaitable<std::string> get_privileges(const std::string& name, CallOptions options = {});
  asio::awaitable<std::string> set_privileges(const std::string& name, const std::string& json,
                                              CallOptions options = {});
  asio::awaitable<void> delete_privileges(const std::string& name, CallOptions options = {});
  asio::awaitable<std::string> get_resources(const std::string& name, CallOptions options = {});
  asio::awaitable<std::string> set_resources(const std::string& name, const std::string& json,
                                             CallOptions options = {});
  asio::awaitable<void> delete_resources(const std::string& name, CallOptions options = {});

  // --- tunnels and ports (spec §9, §6) ---
  // A TCP connection to `host:port` inside the sprite (`host`: the
  // sprite's own names and loopback addresses; what it views must live
  // until the call is done). Waits for the server's `connected` within the
  // timeout (default Timeouts::exec_start: the sprite may be woken). A
  // refusal is typed: nothing listening is network with code()
  // "ECONNREFUSED"; a bad port or a host that is not the sprite's usage;
  // else api. Not retried (a connect may have reached the target).
  asio::awaitable<std::unique_ptr<Tunnel>> open_tunnel(const std::string& name, int port,
                                                       std::string_view host = "localhost",
                                                       CallOptions options = {});
  // Watches the sprite's listening ports; returns once the server sent
  // its port_list (default timeout Timeouts::request), so a port opened
  // after the call is reported as opened.
  asio::awaitable<std::unique_ptr<PortWatch>> watch_ports(const std::string& name,
                                                          CallOptions options = {});

  // A new connection to a running session, for ExecProcess's resume:
  // retried like an idempotent call; not_found when the session is gone.
  asio::awaitable<std::unique_ptr<WebSocket>> reopen_session(const std::string& name,
                                                             const std::string& session_id);

  // --- anything else, raw: JSON in, status and body out (no retries) ---
  asio::awaitable<Response> call(const std::string& method, const std::string& target,
                                 const std::string& json_body = {}, CallOptions options = {});

 private:
  asio::awaitable<Response> request(Request request, bool idempotent, Millis timeout,
                                    const std::string& op);
  asio::awaitable<Response> expect(Request request, bool idempotent, Millis timeout,
                                   const std::string& op, int ok_low, int ok_high);
  // GET, POST (with `json`) or DELETE of policy/KIND (privileges,
  // resources): the answer's body.
  asio::awaitable<std::string> policy_call(const std::string& method, const std::string& name,
                                           const std::string& kind, const std::string& json,
                                           CallOptions options);
  asio::awaitable<std::unique_ptr<EventStream>> service_action(const std::string& name,
                                                               const std::string& svc,
                                                               const std::string& action,
                                                               std::string query,
                                                               CallOptions options);
  asio::awaitable<std::unique_ptr<EventStream>> open_events(const std::string& method,
                                                            const std::string& target,
                                                            std::string body, Millis timeout,
                                                            std::string op, bool idempotent = false,
                                                            bool error_fails = true);
  // A streamed answer with a 2xx status (else the Error); retried before
  // the head as request() does when `idempotent`, never otherwise.
  asio::awaitable<std::unique_ptr<BodyStream>> open_body(Request request, bool idempotent,
                                                         Millis timeout, const std::string& op);
  // A JSON POST to fs/OP (the body has its workingDir); the 2xx answer.
  asio::awaitable<Response> fs_post(const std::string& name, const std::string& fs_op,
                                    std::string body, bool idempotent, const FsOptions& options,
                                    const std::string& op);
  // "/v1/sprites/NAME/fs/OP?path=PATH&workingDir=DIR"
  std::string fs_target(const std::string& name, const std::string& fs_op, const std::string& path,
                        const FsOptions& options) const;
  asio::awaitable<proto::FsListing> list_fs(const std::string& name, const std::string& path,
                                            bool recursive, const std::string& pattern,
                                            const FsOptions& options, const std::string& op);
  asio::awaitable<std::unique_ptr<WebSocket>> open_socket(const std::string& target, Millis timeout,
                                                          const std::string& op);
  asio::awaitable<std::unique_ptr<ExecProcess>> open_exec(const std::string& name,
                                                          const std::string& target, bool tty,
                                                          Millis timeout, const std::string& op);
  asio::awaitable<void> backoff(int attempt, std::optional<std::chrono::seconds> retry_after,
                                const std::string& op);
  Request make(std::string method, std::string target) const;
  void trace(const std::string& line) const;
  // "WHAT TARGET -> STATUS (N ms)", timed from `start`.
  void trace_answer(const std::string& what, const std::string& target, int status,
                    std::chrono::steady_clock::time_point start) const;
  // 429 and 502-504: the server refused for now and may take it later.
  static bool retryable_status(int status);

  asio::any_io_executor executor_;
  Config config_;
  std::unique_ptr<Transport> transport_;
};

// "/v1/sprites/NAME" with NAME percent-encoded.
std::string sprite_path(const std::string& name);

// `path` made absolute against `working_dir` and cleaned lexically, as the
// server does (Go's filepath.Join: "a/../b" is "b", ".." above "/" is "/").
std::string absolute_fs_path(const std::string& path, std::string_view working_dir);

}  // namespace spritescript::client
