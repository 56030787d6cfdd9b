#include "client/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "proto/values.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <random>
#include <regex>

namespace spritescript::client {

namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
using Clock = std::chrono::steady_clock;

// The header's value ("" when absent); `name` in lower case.
std::string header_value(const Headers& headers, std::string_view name) {
  for (const auto& [key, value] : headers) {
    if (key.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < key.size() && same; ++i) {
      same = std::tolower(static_cast<unsigned char>(key[i])) == name[i];
    }
    if (same) return value;
  }
  return {};
}

// A glob that matches `name` only, for fs/list's `pattern`; "" when the
// name holds glob characters (their escaping differs between servers).
std::string literal_pattern(const std::string& name) {
  return name.find_first_of("*?[]\\") == std::string::npos ? name : std::string();
}

// The working directory to send: "/" unless given.
std::string dir_of(const FsOptions& options) {
  return options.working_dir.empty() ? std::string("/") : std::string(options.working_dir);
}

// uid/gid for fs/chown: digits as a number, anything else as a name.
boost::json::value owner_value(const std::string& who) {
  std::uint64_t id = 0;
  auto [end, ec] = std::from_chars(who.data(), who.data() + who.size(), id);
  boost::json::value value;
  if (ec == std::errc() && end == who.data() + who.size()) {
    value = id;
  } else {
    value = who;
  }
  return value;
}

// "&mkdirParents=...&mode=..." of fs/write.
std::string write_query(std::optional<unsigned> mode, bool mkdir_parents) {
  std::string query = mkdir_parents ? "&mkdirParents=true" : "&mkdirParents=false";
  if (mode) query += "&mode=" + proto::format_octal_mode(*mode);
  return query;
}

// A local failure as an Error: the errno name as the code, the kind as the
// fs API's (ENOENT not_found, EISDIR usage, ...).
Error local_error(const std::string& op, const std::string& path, int err) {
  const char* name = ::strerrorname_np(err);
  std::string code = name ? name : "";
  ErrorKind kind = ErrorKind::api;
  if (err == ENOENT || err == ENOTDIR) kind = ErrorKind::not_found;
  if (err == EISDIR || err == EINVAL) kind = ErrorKind::usage;
  return Error(
      kind, op + ": " + path + ": " + std::strerror(err) + (code.empty() ? "" : " (" + code + ")"),
      0, code);
}

// A local regular file as a request body, read with read(2) piece by piece.
class FileSource final : public BodySource {
 public:
  // Opens `path`; throws Error when it cannot be read or is not a regular file.
  FileSource(const std::string& path, std::string op) : path_(path), op_(std::move(op)) {
    do {
      fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) throw local_error(op_, path_, errno);
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      int err = errno;
      ::close(fd_);
      throw local_error(op_, path_, err);
    }
    if (!S_ISREG(st.st_mode)) {
      ::close(fd_);
      throw Error(
          ErrorKind::usage,
          op_ + ": " + path_ + (S_ISDIR(st.st_mode) ? ": is a directory" : ": not a regular file"),
          0, S_ISDIR(st.st_mode) ? "EISDIR" : "EINVAL");
    }
    size_ = static_cast<std::uint64_t>(st.st_size);
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  ~FileSource() override { ::close(fd_); }
  FileSource(const FileSource&) = delete;
  FileSource& operator=(const FileSource&) = delete;

  std::uint64_t size() const override { return size_; }

  asio::awaitable<std::size_t> read(char* buffer, std::size_t max) override {
    co_return read_now(buffer, max);
  }

  bool rewind() override {
    if (::lseek(fd_, 0, SEEK_SET) != 0) return false;
    offset_ = 0;
    return true;
  }

 private:
  // A regular file's read(2) does not wait for anyone: it is done here, on
  // the calling thread (the page cache, or a short wait for the disk).
  std::size_t read_now(char* buffer, std::size_t max) {
    ssize_t n = 0;
    do {
      n = ::read(fd_, buffer, max);
    } while (n < 0 && errno == EINTR);
    if (n < 0) throw local_error(op_, path_, errno);
    if (n == 0 && offset_ < size_) {
      throw Error(ErrorKind::conflict, op_ + ": " + path_ + " shrank while it was being sent (" +
                                           std::to_string(offset_) + " of " +
                                           std::to_string(size_) + " bytes)");
    }
    offset_ += static_cast<std::uint64_t>(n);
    return static_cast<std::size_t>(n);
  }

  std::string path_;
  std::string op_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  std::uint64_t offset_ = 0;
};

}  // namespace

std::string sprite_path(const std::string& name) {
  return "/v1/sprites/" + proto::percent_encode(name);
}

std::string absolute_fs_path(const std::string& path, std::string_view working_dir) {
  std::string joined = path;
  if (path.empty() || path.front() != '/') {
    joined = std::string(working_dir.empty() ? "/" : working_dir) + "/" + path;
  }
  std::vector<std::string_view> parts;
  std::string_view rest(joined);
  while (!rest.empty()) {
    auto slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (auto part : parts) {
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

Client::Client(asio::any_io_executor executor, Config config)
    : executor_(std::move(executor)), config_(std::move(config)) {
  if (config_.api_url.empty()) {
    throw Error(ErrorKind::usage, "no API URL: set SPRITES_API_URL or use the local engine");
  }
  TransportOptions options;
  options.ca_file = config_.ca_file;
  options.insecure = config_.insecure;
  options.proxy = config_.proxy;
  options.max_connections = config_.max_connections;
  options.connect_timeout = config_.timeouts.connect;
  transport_ = std::make_unique<Transport>(executor_, Endpoint::parse(config_.api_url), options);
  if (config_.insecure && transport_->endpoint().tls) {
    std::fprintf(stderr,
                 "spritescript: warning: TLS certificate verification is off "
                 "(SPRITES_INSECURE)\n");
  }
}

Client::~Client() = default;

Request Client::make(std::string method, std::string target) const {
  Request r;
  r.method = std::move(method);
  r.target = std::move(target);
  if (!config_.token.empty()) r.headers.emplace_back("Authorization", "Bearer " + config_.token);
  r.headers.emplace_back("User-Agent", config_.user_agent);
  return r;
}

bool Client::retryable_status(int status) {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

void Client::trace_answer(const std::string& what, const std::string& target, int status,
                          Clock::time_point start) const {
  if (!config_.trace) return;
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  trace(what + " " + target + " -> " + std::to_string(status) + " (" + std::to_string(ms) + " ms)");
}

void Client::trace(const std::string& line) const {
  if (!config_.trace) return;
  // Exec environments carry secrets: keep the names, hide the values.
  static const std::regex env_value("([?&]env=[^&=%\\s]*)(%3D|=)[^&\\s]*");
  std::string shown = std::regex_replace(line, env_value, "$1$2***");
  std::fprintf(stderr, "spritescript trace: %s\n", shown.c_str());
}

asio::awaitable<void> Client::backoff(int attempt, std::optional<std::chrono::seconds> retry_after,
                                      const std::string& op) {
  Millis delay;
  if (retry_after) {
    delay = std::chrono::duration_cast<Millis>(*retry_after);
  } else {
    // Full jitter (AWS architecture blog): uniform in [0, min(cap, base*2^n)].
    auto ceiling = std::min<std::int64_t>(config_.retry.max_delay.count(),
                                          config_.retry.base_delay.count() << attempt);
    static thread_local std::minstd_rand rng{std::random_device{}()};
    delay = Millis(std::uniform_int_distribution<std::int64_t>(ceiling / 2, ceiling)(rng));
  }
  trace(op + ": retrying in " + std::to_string(delay.count()) + " ms");
  asio::steady_timer timer(executor_, delay);
  auto [ec] = co_await timer.async_wait(kAsTuple);
  if (ec) throw Error(ErrorKind::cancelled, op + ": cancelled");
}

asio::awaitable<Response> Client::request(Request request, bool idempotent, Millis timeout,
                                          const std::string& op) {
  const int attempts = std::max(1, config_.retry.max_attempts);
  for (int attempt = 0;; ++attempt) {
    const bool more = attempt + 1 < attempts;
    auto start = Clock::now();
    std::optional<std::chrono::seconds> retry_after;
    try {
      Response res = co_await transport_->send(request, timeout, idempotent);
      trace_answer(request.method, request.target, res.status, start);
      // A 429 refuses before doing anything: even a create may try again.
      // A streamed body is sent again from its first byte, when it can be.
      bool retry = retryable_status(res.status) && (idempotent || res.status == 429) && more &&
                   (!request.source || request.source->rewind());
      if (!retry) co_return res;
      retry_after =
          error_from_response(op, res.status, res.body, res.header("Retry-After")).retry_after();
      if (retry_after && *retry_after > config_.retry.max_retry_after) co_return res;
    } catch (const Error& e) {
      trace(request.method + " " + request.target + " failed: " + e.what());
      if (e.kind() != ErrorKind::network || !idempotent || !more) throw;
      if (request.source && !request.source->rewind()) throw;
    }
    co_await backoff(attempt, retry_after, op);
  }
}

asio::awaitable<Response> Client::expect(Request request, bool idempotent, Millis timeout,
                                         const std::string& op, int ok_low, int ok_high) {
  Response res = co_await this->request(std::move(request), idempotent, timeout, op);
  if (res.status < ok_low || res.status > ok_high) {
    throw error_from_response(op, res.status, res.body, res.header("Retry-After"));
  }
  co_return res;
}

// --- sprites ------------------------------------------------------------------

asio::awaitable<proto::Sprite> Client::create_sprite(const proto::CreateSpriteRequest& spec,
                                                     CallOptions options) {
  const std::string op = "create sprite " + spec.name;
  auto timeout = options.timeout.value_or(config_.timeouts.create);
  auto r = make("POST", "/v1/sprites");
  r.body = proto::to_json(spec);
  r.content_type = "application/json";
  for (int attempt = 0;; ++attempt) {
    try {
      Response res = co_await request(r, false, timeout, op);
      if (res.status >= 200 && res.status < 300) {
        try {
          co_return proto::parse_sprite(res.body);
        } catch (const proto::ModelError& e) {
          throw Error(ErrorKind::protocol, op + ": " + e.what());
        }
      }
      throw error_from_response(op, res.status, res.body, res.header("Retry-After"));
    } catch (const Error& e) {
      // The request may or may not have reached the server: ask before
      // trying again, so a retry never makes a second sprite or a false
      // "already exists".
      if (e.kind() != ErrorKind::network || attempt + 1 >= config_.retry.max_attempts) throw;
    }
    try {
      co_return co_await get_sprite(spec.name);
    } catch (const Error& e) {
      if (e.kind() != ErrorKind::not_found) throw;
    }
    co_await backoff(attempt, std::nullopt, op);
  }
}

asio::awaitable<proto::SpritePage> Client::list_sprites(const std::string& prefix, int max_results,
                                                        const std::string& continuation,
                                                        CallOptions options) {
  std::string target = "/v1/sprites?max_results=" + std::to_string(max_results);
  if (!prefix.empty()) target += "&prefix=" + proto::percent_encode(prefix);
  if (!continuation.empty()) target += "&continuation_token=" + proto::percent_encode(continuation);
  const std::string op = "list sprites";
  Response res = co_await expect(make("GET", target), true,
                                 options.timeout.value_or(config_.timeouts.request), op, 200, 200);
  try {
    co_return proto::parse_sprite_page(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<std::vector<proto::Sprite>> Client::list_all_sprites(const std::string& prefix,
                                                                     CallOptions options) {
  std::vector<proto::Sprite> all;
  std::string token;
  for (;;) {
    auto page = co_await list_sprites(prefix, 50, token, options);
    for (auto& s : page.sprites) all.push_back(std::move(s));
    // As Go: stop when there is no more, or no token to ask for it with.
    if (!page.has_more || page.next_continuation_token.empty()) co_return all;
    if (page.next_continuation_token == token) {
      throw Error(ErrorKind::protocol, "list sprites: the server repeated its continuation token");
    }
    token = page.next_continuation_token;
  }
}

asio::awaitable<proto::Sprite> Client::get_sprite(const std::string& name, CallOptions options) {
  const std::string op = "get sprite " + name;
  Response res = co_await expect(make("GET", sprite_path(name)), true,
                                 options.timeout.value_or(config_.timeouts.request), op, 200, 200);
  try {
    co_return proto::parse_sprite(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<proto::Sprite> Client::update_sprite(const std::string& name,
                                                     const proto::UpdateSpriteRequest& update,
                                                     CallOptions options) {
  const std::string op = "update sprite " + name;
  auto r = make("PUT", sprite_path(name));
  r.body = proto::to_json(update);
  r.content_type = "application/json";
  // PUT of the same settings is idempotent.
  Response res = co_await expect(std::move(r), true,
                                 options.timeout.value_or(config_.timeouts.request), op, 200, 299);
  try {
    co_return proto::parse_sprite(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<void> Client::delete_sprite(const std::string& name, CallOptions options) {
  const std::string op = "delete sprite " + name;
  auto timeout = options.timeout.value_or(config_.timeouts.request);
  // DELETE is idempotent; a retry that finds it gone already succeeded.
  Response res = co_await request(make("DELETE", sprite_path(name)), true, timeout, op);
  if (res.status >= 200 && res.status < 300) co_return;
  throw error_from_response(op, res.status, res.body, res.header("Retry-After"));
}

asio::awaitable<void> Client::upgrade_sprite(const std::string& name, CallOptions options) {
  co_await expect(make("POST", sprite_path(name) + "/upgrade"), false,
                  options.timeout.value_or(config_.timeouts.lifecycle), "upgrade sprite " + name,
                  200, 299);
}

asio::awaitable<std::string> Client::restart_sprite(const std::string& name, CallOptions options) {
  Response res = co_await expect(make("POST", sprite_path(name) + "/restart"), false,
                                 options.timeout.value_or(config_.timeouts.lifecycle),
                                 "restart sprite " + name, 200, 299);
  co_return res.body;
}

asio::awaitable<std::string> Client::check_sprite(const std::string& name, CallOptions options) {
  Response res = co_await expect(make("GET", sprite_path(name) + "/check"), true,
                                 options.timeout.value_or(config_.timeouts.lifecycle),
                                 "check sprite " + name, 200, 200);
  co_return res.body;
}

asio::awaitable<Response> Client::call(const std::string& method, const std::string& target,
                                       const std::string& json_body, CallOptions options) {
  auto r = make(method, target);
  if (!json_body.empty()) {
    r.body = json_body;
    r.content_type = "application/json";
  }
  co_return co_await request(std::move(r), false,
                             options.timeout.value_or(config_.timeouts.request),
                             method + " " + target);
}

// --- sessions -------------------------------------------------------------------

asio::awaitable<std::vector<proto::SessionEntry>> Client::list_sessions(const std::string& name,
                                                                        CallOptions options) {
  const std::string op = "list sessions of " + name;
  Response res = co_await expect(make("GET", sprite_path(name) + "/exec"), true,
                                 options.timeout.value_or(config_.timeouts.request), op, 200, 200);
  try {
    co_return proto::parse_sessions(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<std::unique_ptr<EventStream>> Client::kill_session(
    const std::string& name, const std::string& session_id, const std::string& signal,
    std::optional<std::chrono::nanoseconds> timeout, CallOptions options) {
  const std::string op = "kill session " + session_id + " of " + name;
  std::string target = sprite_path(name) + "/exec/" + proto::percent_encode(session_id) +
                       "/kill?signal=" + proto::percent_encode(signal);
  if (timeout) target += "&timeout=" + proto::format_go_duration(*timeout);
  auto start = Clock::now();
  auto body = co_await transport_->open_stream(make("POST", target),
                                               options.timeout.value_or(config_.timeouts.request));
  trace_answer("POST", target, body->status, start);
  if (body->status == 410) co_return std::make_unique<EventStream>(nullptr, op);
  if (body->status != 200) {
    std::string text = co_await body->read_all();
    throw error_from_response(op, body->status, text, "");
  }
  co_return std::make_unique<EventStream>(std::move(body), op);
}

asio::awaitable<std::unique_ptr<BodyStream>> Client::open_body(Request request, bool idempotent,
                                                               Millis timeout,
                                                               const std::string& op) {
  const int attempts = idempotent ? std::max(1, config_.retry.max_attempts) : 1;
  for (int attempt = 0;; ++attempt) {
    const bool more = attempt + 1 < attempts;
    auto start = Clock::now();
    std::unique_ptr<BodyStream> body;
    try {
      body = co_await transport_->open_stream(request, timeout);
    } catch (const Error& e) {
      trace(request.method + " " + request.target + " failed: " + e.what());
      if (e.kind() != ErrorKind::network || !more) throw;
    }
    std::optional<std::chrono::seconds> retry_after;
    if (body) {
      trace_answer(request.method, request.target, body->status, start);
      if (body->status >= 200 && body->status < 300) co_return body;
      std::string text = co_await body->read_all();
      const std::string retry_header = header_value(body->headers, "retry-after");
      retry_after = error_from_response(op, body->status, text, retry_header).retry_after();
      if (!retryable_status(body->status) || !more ||
          (retry_after && *retry_after > config_.retry.max_retry_after)) {
        throw error_from_response(op, body->status, text, retry_header);
      }
    }
    co_await backoff(attempt, retry_after, op);
  }
}

asio::awaitable<std::unique_ptr<EventStream>> Client::open_events(const std::string& method,
                                                                  const std::string& target,
                                                                  std::string body, Millis timeout,
                                                                  std::string op, bool idempotent,
                                                                  bool error_fails) {
  auto r = make(method, target);
  r.body = std::move(body);
  if (!r.body.empty()) r.content_type = "application/json";
  auto stream = co_await open_body(std::move(r), idempotent, timeout, op);
  co_return std::make_unique<EventStream>(std::move(stream), std::move(op), error_fails);
}

asio::awaitable<std::unique_ptr<EventStream>> Client::create_checkpoint(const std::string& name,
                                                                        const std::string& comment,
                                                                        CallOptions options) {
  // Never retried: a second POST would make a second checkpoint.
  boost::json::object body;
  if (!comment.empty()) body["comment"] = comment;
  co_return co_await open_events(
      "POST", sprite_path(name) + "/checkpoint", boost::json::serialize(body),
      options.timeout.value_or(config_.timeouts.checkpoint), "checkpoint " + name);
}

asio::awaitable<std::unique_ptr<EventStream>> Client::restore_checkpoint(const std::string& name,
                                                                         const std::string& id,
                                                                         CallOptions options) {
  co_return co_await open_events(
      "POST", sprite_path(name) + "/checkpoints/" + proto::percent_encode(id) + "/restore", {},
      options.timeout.value_or(config_.timeouts.checkpoint), "restore " + name + " to " + id);
}

asio::awaitable<std::string> Client::checkpoint(const std::string& name, const std::string& comment,
                                                CallOptions options) {
  auto events = co_await create_checkpoint(name, comment, options);
  std::string id;
  while (auto event = co_await events->next()) {
    if (event->type == "complete") id = proto::checkpoint_id_in(event->message);
  }
  if (id.empty()) {
    throw Error(ErrorKind::protocol,
                "checkpoint " + name + ": the stream ended without \"Checkpoint <id> created\"");
  }
  co_return id;
}

asio::awaitable<void> Client::restore(const std::string& name, const std::string& id,
                                      CallOptions options) {
  auto events = co_await restore_checkpoint(name, id, options);
  bool complete = false;
  while (auto event = co_await events->next()) complete = complete || event->type == "complete";
  if (!complete) {
    throw Error(ErrorKind::protocol, "restore " + name + " to " + id +
                                         ": the stream ended before it said complete; check "
                                         "the sprite's state before going on");
  }
}

asio::awaitable<std::vector<proto::Checkpoint>> Client::list_checkpoints(const std::string& name,
                                                                         bool include_auto,
                                                                         CallOptions options) {
  const std::string op = "list checkpoints of " + name;
  std::string target = sprite_path(name) + "/checkpoints";
  if (include_auto) target += "?includeAuto=true";
  Response res = co_await expect(make("GET", target), true,
                                 options.timeout.value_or(config_.timeouts.request), op, 200, 200);
  try {
    co_return proto::parse_checkpoints(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<proto::Checkpoint> Client::get_checkpoint(const std::string& name,
                                                          const std::string& id,
                                                          CallOptions options) {
  const std::string op = "get checkpoint " + id + " of " + name;
  Response res =
      co_await expect(make("GET", sprite_path(name) + "/checkpoints/" + proto::percent_encode(id)),
                      true, options.timeout.value_or(config_.timeouts.request), op, 200, 200);
  try {
    co_return proto::parse_checkpoint(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<void> Client::delete_checkpoint(const std::string& name, const std::string& id,
                                                CallOptions options) {
  const std::string op = "delete checkpoint " + id + " of " + name;
  co_await expect(make("DELETE", sprite_path(name) + "/checkpoints/" + proto::percent_encode(id)),
                  false, options.timeout.value_or(config_.timeouts.request), op, 200, 299);
}

// --- filesystem -----------------------------------------------------------------

std::string Client::fs_target(const std::string& name, const std::string& fs_op,
                              const std::string& path, const FsOptions& options) const {
  return sprite_path(name) + "/fs/" + fs_op + "?path=" + proto::percent_encode(path) +
         "&workingDir=" + proto::percent_encode(dir_of(options));
}

asio::awaitable<std::string> Client::read_file(const std::string& name, const std::string& path,
                                               FsOptions options) {
  const std::string op = "read " + path + " on " + name;
  auto r = make("GET", fs_target(name, "read", path, options));
  const Millis timeout = options.timeout.value_or(config_.timeouts.files);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 206);
  co_return std::move(res.body);
}

asio::awaitable<std::unique_ptr<FileReader>> Client::open_file(const std::string& name,
                                                               const std::string& path,
                                                               FsOptions options) {
  std::string op = "read " + path + " on " + name;
  auto r = make("GET", fs_target(name, "read", path, options));
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  auto body = co_await open_body(std::move(r), true, timeout, op);
  co_return std::make_unique<FileReader>(std::move(body), std::move(op));
}

asio::awaitable<proto::FsWritten> Client::write_file(const std::string& name,
                                                     const std::string& path, std::string data,
                                                     std::optional<unsigned> mode,
                                                     bool mkdir_parents, FsOptions options) {
  const std::string op = "write " + path + " on " + name;
  std::string target = fs_target(name, "write", path, options) + write_query(mode, mkdir_parents);
  auto r = make("PUT", target);
  r.body = std::move(data);
  r.content_type = "application/octet-stream";
  // The same bytes written again give the same file: idempotent.
  const Millis timeout = options.timeout.value_or(config_.timeouts.files);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 201);
  try {
    co_return proto::parse_fs_written(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<proto::FsWritten> Client::write_file_from(const std::string& name,
                                                          const std::string& path,
                                                          const std::string& local_path,
                                                          std::optional<unsigned> mode,
                                                          bool mkdir_parents, FsOptions options) {
  const std::string op = "write " + path + " on " + name;
  auto source = std::make_shared<FileSource>(local_path, op);  // throws before any request
  std::string target = fs_target(name, "write", path, options) + write_query(mode, mkdir_parents);
  auto r = make("PUT", target);
  r.source = source;
  r.content_type = "application/octet-stream";
  // Idempotent as write_file: a retry rewinds the file.
  const Millis timeout = options.timeout.value_or(config_.timeouts.files);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 201);
  try {
    co_return proto::parse_fs_written(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<proto::FsListing> Client::list_fs(const std::string& name, const std::string& path,
                                                  bool recursive, const std::string& pattern,
                                                  const FsOptions& options, const std::string& op) {
  std::string target = fs_target(name, "list", path, options);
  if (recursive) target += "&recursive=true";
  if (!pattern.empty()) target += "&pattern=" + proto::percent_encode(pattern);
  auto r = make("GET", target);
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 200);
  try {
    co_return proto::parse_fs_listing(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<std::vector<proto::FsEntry>> Client::list_dir(const std::string& name,
                                                              const std::string& path,
                                                              bool recursive, FsOptions options) {
  const std::string op = "list " + path + " on " + name;
  const std::string no_pattern;
  auto listing = co_await list_fs(name, path, recursive, no_pattern, options, op);
  co_return std::move(listing.entries);
}

asio::awaitable<proto::FsEntry> Client::stat(const std::string& name, const std::string& path,
                                             FsOptions options) {
  const std::string op = "stat " + path + " on " + name;
  const std::string target = absolute_fs_path(path, options.working_dir);
  if (target == "/") {
    proto::FsEntry root;
    root.name = "/";
    root.path = "/";
    root.type = "directory";
    root.is_dir = true;
    root.mode = 0755;
    co_return root;
  }
  // The entry as its parent lists it, so a directory is itself (never its
  // first child, the SDKs' quirk) and an empty one exists. The pattern
  // keeps the answer to that entry where the server honours it.
  const auto slash = target.find_last_of('/');
  const std::string parent = slash == 0 ? "/" : target.substr(0, slash);
  const std::string base = target.substr(slash + 1);
  FsOptions in_parent = options;
  in_parent.working_dir = "/";
  const std::string pattern = literal_pattern(base);
  auto listing = co_await list_fs(name, parent, false, pattern, in_parent, op);
  for (auto& entry : listing.entries) {
    if (entry.name == base || entry.path == target) co_return std::move(entry);
  }
  throw Error(ErrorKind::not_found, op + ": no such file or directory: " + target + " (ENOENT)",
              404, "ENOENT");
}

asio::awaitable<std::vector<std::string>> Client::remove(const std::string& name,
                                                         const std::string& path, bool recursive,
                                                         FsOptions options) {
  const std::string op = "remove " + path + " on " + name;
  std::string target = fs_target(name, "delete", path, options);
  if (recursive) target += "&recursive=true";
  auto r = make("DELETE", target);
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 299);
  try {
    co_return proto::parse_fs_deleted(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<Response> Client::fs_post(const std::string& name, const std::string& fs_op,
                                          std::string body, bool idempotent,
                                          const FsOptions& options, const std::string& op) {
  auto r = make("POST", sprite_path(name) + "/fs/" + fs_op);
  r.body = std::move(body);
  r.content_type = "application/json";
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  co_return co_await expect(std::move(r), idempotent, timeout, op, 200, 299);
}

asio::awaitable<proto::FsMove> Client::rename(const std::string& name, const std::string& source,
                                              const std::string& dest, FsOptions options) {
  const std::string op = "rename " + source + " to " + dest + " on " + name;
  boost::json::object body;
  body["source"] = source;
  body["dest"] = dest;
  body["workingDir"] = dir_of(options);
  // Not idempotent: a second rename finds no source.
  std::string json = boost::json::serialize(body);
  const std::string fs_op = "rename";
  Response res = co_await fs_post(name, fs_op, std::move(json), false, options, op);
  try {
    co_return proto::parse_fs_renamed(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<proto::FsCopied> Client::copy(const std::string& name, const std::string& source,
                                              const std::string& dest, bool recursive,
                                              bool preserve_attrs, FsOptions options) {
  const std::string op = "copy " + source + " to " + dest + " on " + name;
  boost::json::object body;
  body["source"] = source;
  body["dest"] = dest;
  body["workingDir"] = dir_of(options);
  body["recursive"] = recursive;
  if (preserve_attrs) body["preserveAttrs"] = true;
  // Not idempotent: a second copy into a directory `dest` copies inside it.
  std::string json = boost::json::serialize(body);
  const std::string fs_op = "copy";
  Response res = co_await fs_post(name, fs_op, std::move(json), false, options, op);
  try {
    co_return proto::parse_fs_copied(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<std::vector<proto::FsChange>> Client::chmod(const std::string& name,
                                                            const std::string& path, unsigned mode,
                                                            bool recursive, FsOptions options) {
  const std::string op = "chmod " + path + " on " + name;
  boost::json::object body;
  body["path"] = path;
  body["workingDir"] = dir_of(options);
  body["mode"] = proto::format_octal_mode(mode);
  if (recursive) body["recursive"] = true;
  // Setting an absolute mode twice is setting it once: idempotent.
  std::string json = boost::json::serialize(body);
  const std::string fs_op = "chmod";
  Response res = co_await fs_post(name, fs_op, std::move(json), true, options, op);
  try {
    co_return proto::parse_fs_changes(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<std::vector<proto::FsChange>> Client::chown(const std::string& name,
                                                            const std::string& path,
                                                            const std::string& user,
                                                            const std::string& group,
                                                            bool recursive, FsOptions options) {
  const std::string op = "chown " + path + " on " + name;
  if (user.empty() && group.empty()) throw Error(ErrorKind::usage, op + ": no user or group given");
  boost::json::object body;
  body["path"] = path;
  body["workingDir"] = dir_of(options);
  if (!user.empty()) body["uid"] = owner_value(user);
  if (!group.empty()) body["gid"] = owner_value(group);
  if (recursive) body["recursive"] = true;
  std::string json = boost::json::serialize(body);
  const std::string fs_op = "chown";
  Response res = co_await fs_post(name, fs_op, std::move(json), true, options, op);
  try {
    co_return proto::parse_fs_changes(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

FileReader::FileReader(std::unique_ptr<BodyStream> body, std::string op)
    : body_(std::move(body)), op_(std::move(op)) {
  std::string length = header_value(body_->headers, "content-length");
  std::uint64_t n = 0;
  auto [end, ec] = std::from_chars(length.data(), length.data() + length.size(), n);
  if (!length.empty() && ec == std::errc() && end == length.data() + length.size()) size_ = n;
}

asio::awaitable<std::optional<std::string>> FileReader::next() {
  while (body_) {
    auto piece = co_await body_->next();
    if (!piece) {
      body_.reset();
      if (size_ && bytes_ != *size_) {
        throw Error(ErrorKind::network, op_ + ": the file ended after " + std::to_string(bytes_) +
                                            " of " + std::to_string(*size_) + " bytes");
      }
      break;
    }
    if (piece->empty()) continue;
    bytes_ += piece->size();
    co_return std::move(*piece);
  }
  co_return std::nullopt;
}

// --- services -------------------------------------------------------------------

namespace {

std::string service_path(const std::string& name, const std::string& svc) {
  return sprite_path(name) + "/services/" + proto::percent_encode(svc);
}

// "?KEY=5s" when set, else "".
std::string duration_query(std::string_view key, std::optional<std::chrono::nanoseconds> d) {
  if (!d) return {};
  std::string query = "?";  // (appended piece by piece: GCC 12 misreads "?" + string as overlapping)
  query.append(key).append("=").append(proto::percent_encode(proto::format_go_duration(*d)));
  return query;
}

}  // namespace

asio::awaitable<std::vector<proto::Service>> Client::list_services(const std::string& name,
                                                                   CallOptions options) {
  const std::string op = "list services of " + name;
  auto r = make("GET", sprite_path(name) + "/services");
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 200);
  try {
    co_return proto::parse_services(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<proto::Service> Client::get_service(const std::string& name, const std::string& svc,
                                                    CallOptions options) {
  const std::string op = "get service " + svc + " of " + name;
  auto r = make("GET", service_path(name, svc));
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 200);
  try {
    co_return proto::parse_service(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<std::unique_ptr<EventStream>> Client::put_service(
    const std::string& name, const std::string& svc, const proto::ServiceDefinition& definition,
    std::optional<std::chrono::nanoseconds> duration, CallOptions options) {
  const std::string target = service_path(name, svc) + duration_query("duration", duration);
  std::string body = proto::to_json(definition);
  const Millis timeout = options.timeout.value_or(config_.timeouts.lifecycle);
  std::string op = "put service " + svc + " of " + name;
  // PUT of the same definition is idempotent: retried before the answer.
  const std::string method = "PUT";
  co_return co_await open_events(method, target, std::move(body), timeout, std::move(op), true,
                                 false);
}

// start, stop and restart: a POST whose answer is the service's events.
// Not retried: a second start or stop is not the same request.
asio::awaitable<std::unique_ptr<EventStream>> Client::service_action(const std::string& name,
                                                                     const std::string& svc,
                                                                     const std::string& action,
                                                                     std::string query,
                                                                     CallOptions options) {
  const std::string target = service_path(name, svc) + "/" + action + query;
  const Millis timeout = options.timeout.value_or(config_.timeouts.lifecycle);
  std::string op = action + " service " + svc + " of " + name;
  std::string no_body;
  const std::string method = "POST";
  co_return co_await open_events(method, target, std::move(no_body), timeout, std::move(op), false,
                                 false);
}

asio::awaitable<std::unique_ptr<EventStream>> Client::start_service(
    const std::string& name, const std::string& svc,
    std::optional<std::chrono::nanoseconds> duration, CallOptions options) {
  const std::string action = "start";
  std::string query = duration_query("duration", duration);
  co_return co_await service_action(name, svc, action, std::move(query), options);
}

asio::awaitable<std::unique_ptr<EventStream>> Client::stop_service(
    const std::string& name, const std::string& svc,
    std::optional<std::chrono::nanoseconds> timeout, CallOptions options) {
  const std::string action = "stop";
  std::string query = duration_query("timeout", timeout);
  co_return co_await service_action(name, svc, action, std::move(query), options);
}

asio::awaitable<std::unique_ptr<EventStream>> Client::restart_service(
    const std::string& name, const std::string& svc,
    std::optional<std::chrono::nanoseconds> duration, CallOptions options) {
  const std::string action = "restart";
  std::string query = duration_query("duration", duration);
  co_return co_await service_action(name, svc, action, std::move(query), options);
}

asio::awaitable<std::unique_ptr<EventStream>> Client::service_logs(
    const std::string& name, const std::string& svc, std::optional<int> lines,
    std::optional<std::chrono::nanoseconds> duration, CallOptions options) {
  std::string target = service_path(name, svc) + "/logs" + duration_query("duration", duration);
  if (lines) target += (duration ? "&lines=" : "?lines=") + std::to_string(*lines);
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  std::string op = "logs of service " + svc + " of " + name;
  std::string no_body;
  const std::string method = "GET";
  co_return co_await open_events(method, target, std::move(no_body), timeout, std::move(op), true,
                                 false);
}

asio::awaitable<void> Client::delete_service(const std::string& name, const std::string& svc,
                                             CallOptions options) {
  auto r = make("DELETE", service_path(name, svc));
  // It is stopped first (TERM, KILL after 10 s): the lifecycle timeout.
  const Millis timeout = options.timeout.value_or(config_.timeouts.lifecycle);
  const std::string op = "delete service " + svc + " of " + name;
  co_await expect(std::move(r), true, timeout, op, 200, 299);
}

asio::awaitable<void> Client::signal_service(const std::string& name, const std::string& svc,
                                             const std::string& signal, CallOptions options) {
  boost::json::object body;
  body["name"] = svc;
  body["signal"] = signal;
  auto r = make("POST", sprite_path(name) + "/services/signal");
  r.body = boost::json::serialize(body);
  r.content_type = "application/json";
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  const std::string op = "signal service " + svc + " of " + name;
  // A second signal is a second delivery: sent once.
  co_await expect(std::move(r), false, timeout, op, 200, 299);
}

// --- policies -------------------------------------------------------------------

asio::awaitable<proto::NetworkPolicy> Client::get_network_policy(const std::string& name,
                                                                 CallOptions options) {
  const std::string op = "get network policy of " + name;
  auto r = make("GET", sprite_path(name) + "/policy/network");
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 200);
  try {
    co_return proto::parse_network_policy_body(res.body);
  } catch (const proto::ModelError& e) {
    throw Error(ErrorKind::protocol, op + ": " + e.what());
  }
}

asio::awaitable<void> Client::set_network_policy(const std::string& name,
                                                 const proto::NetworkPolicy& policy,
                                                 CallOptions options) {
  const std::string op = "set network policy of " + name;
  auto r = make("POST", sprite_path(name) + "/policy/network");
  r.body = proto::network_policy_body(policy);
  r.content_type = "application/json";
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  // The same policy twice is the same policy: retried as idempotent.
  Response res = co_await request(std::move(r), true, timeout, op);
  if (res.status == 204) co_return;
  if (res.status >= 200 && res.status < 300) {
    // Both SDKs take anything but 204 as a failure (spec §8.3).
    throw Error(ErrorKind::protocol,
                op + ": the server answered HTTP " + std::to_string(res.status) +
                    " instead of 204; the policy may not be in force",
                res.status);
  }
  throw error_from_response(op, res.status, res.body, res.header("Retry-After"));
}

asio::awaitable<std::string> Client::policy_call(const std::string& method, const std::string& name,
                                                 const std::string& kind, const std::string& json,
                                                 CallOptions options) {
  const char* verb = method == "GET" ? "get " : method == "POST" ? "set " : "delete ";
  const std::string op = verb + kind + " policy of " + name;
  auto r = make(method, sprite_path(name) + "/policy/" + kind);
  if (!json.empty()) {
    r.body = json;
    r.content_type = "application/json";
  }
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  // GET and DELETE are idempotent, and so is storing the same object twice.
  Response res = co_await expect(std::move(r), true, timeout, op, 200, 299);
  if (method == "DELETE") co_return std::string();
  if (method == "POST" && res.body.empty()) co_return json;  // a 204: what was sent is stored
  boost::json::error_code ec;
  boost::json::value value = boost::json::parse(res.body, ec);
  if (ec || !value.is_object()) {
    throw Error(ErrorKind::protocol, op + ": the server's answer is not a JSON object");
  }
  co_return std::move(res.body);
}

asio::awaitable<std::string> Client::get_privileges(const std::string& name, CallOptions options) {
  const std::string method = "GET", kind = "privileges", none;
  co_return co_await policy_call(method, name, kind, none, options);
}

asio::awaitable<std::string> Client::set_privileges(const std::string& name,
                                                    const std::string& json, CallOptions options) {
  const std::string method = "POST", kind = "privileges";
  co_return co_await policy_call(method, name, kind, json, options);
}

asio::awaitable<void> Client::delete_privileges(const std::string& name, CallOptions options) {
  const std::string method = "DELETE", kind = "privileges", none;
  co_await policy_call(method, name, kind, none, options);
}

asio::awaitable<std::string> Client::get_resources(const std::string& name, CallOptions options) {
  const std::string method = "GET", kind = "resources", none;
  co_return co_await policy_call(method, name, kind, none, options);
}

asio::awaitable<std::string> Client::set_resources(const std::string& name, const std::string& json,
                                                   CallOptions options) {
  const std::string method = "POST", kind = "resources";
  co_return co_await policy_call(method, name, kind, json, options);
}

asio::awaitable<void> Client::delete_resources(const std::string& name, CallOptions options) {
  const std::string method = "DELETE", kind = "resources", none;
  co_await policy_call(method, name, kind, none, options);
}

// --- tunnels and ports ----------------------------------------------------------

namespace {

// Large writes go out in pieces: the engine writes one message whole to
// the target before it reads the next.
constexpr std::size_t kTunnelPiece = std::size_t{256} * 1024;

struct ReplyWait {
  bool done = false;
  bool late = false;
};

// Drops `socket` when the timer expires before the reply came.
asio::awaitable<void> abort_when_late(std::shared_ptr<asio::steady_timer> timer,
                                      std::weak_ptr<WebSocket> socket,
                                      std::shared_ptr<ReplyWait> wait) {
  auto [ec] = co_await timer->async_wait(kAsTuple);
  if (ec || wait->done) co_return;
  wait->late = true;
  if (auto s = socket.lock()) s->abort();
}

// The next text message of `socket` (binary ones before it are skipped,
// as JS does), by `deadline`; nullopt when the server closed first.
asio::awaitable<std::optional<std::string>> text_within(std::shared_ptr<WebSocket> socket,
                                                        Clock::time_point deadline,
                                                        std::string op) {
  auto executor = co_await asio::this_coro::executor;
  auto timer = std::make_shared<asio::steady_timer>(executor, deadline);
  auto wait = std::make_shared<ReplyWait>();
  asio::co_spawn(executor, abort_when_late(timer, socket, wait), asio::detached);
  std::optional<std::string> text;
  std::optional<Error> failure;
  try {
    for (;;) {
      auto message = co_await socket->read();
      if (!message) break;
      if (message->binary) continue;
      text = std::move(message->data);
      break;
    }
  } catch (const Error& e) {
    failure = e;
  }
  wait->done = true;
  timer->cancel();
  if (wait->late) {
    throw Error(ErrorKind::timeout, op + ": no answer from the server in time");
  }
  if (failure) throw *failure;
  co_return text;
}

std::string json_string(const boost::json::object& o, const char* key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

// The Error for a tunnel the server refused ({"status":"error",...}).
Error tunnel_refused(const std::string& op, const std::string& why) {
  auto has = [&](const char* what) { return why.find(what) != std::string::npos; };
  if (has("connection refused")) {
    return Error(ErrorKind::network, op + ": " + why, 0, "ECONNREFUSED");
  }
  if (has("invalid port") || has("cannot reach") || has("init")) {
    return Error(ErrorKind::usage, op + ": " + why);
  }
  if (has("timed out") || has("timeout")) return Error(ErrorKind::timeout, op + ": " + why);
  return Error(ErrorKind::api, op + ": " + (why.empty() ? std::string("refused") : why));
}

proto::PortEvent port_event_of(const boost::json::object& o, bool opened) {
  proto::PortEvent e;
  e.opened = opened;
  auto integer = [&](const char* key) {
    const auto* v = o.if_contains(key);
    if (v && v->is_int64()) return static_cast<int>(v->as_int64());
    if (v && v->is_uint64()) return static_cast<int>(v->as_uint64());
    if (v && v->is_double()) return static_cast<int>(v->as_double());
    return 0;
  };
  e.port = integer("port");
  e.pid = integer("pid");
  e.address = json_string(o, "address");
  return e;
}

}  // namespace

Tunnel::Tunnel(std::shared_ptr<WebSocket> socket, std::string op, std::string target)
    : socket_(std::move(socket)), op_(std::move(op)), target_(std::move(target)) {}

Tunnel::~Tunnel() {
  if (socket_) socket_->abort();
}

asio::awaitable<std::optional<std::string>> Tunnel::read() {
  // After close() nothing more is delivered, not even what was buffered.
  while (!ended_ && !closed_) {
    std::optional<WebSocket::Message> message;
    std::optional<Error> broke;
    try {
      message = co_await socket_->read();
    } catch (const Error& e) {
      broke = e;
    }
    if (broke) {
      ended_ = true;
      if (closed_) break;  // closed or aborted here
      throw Error(broke->kind(), op_ + ": " + broke->what());
    }
    if (!message) {
      ended_ = true;
      const auto code = socket_->close_code();
      if (closed_ || code == 1000 || code == 1001) break;
      throw Error(ErrorKind::network, op_ + ": the connection to the target failed (close code " +
                                          std::to_string(code) + ")");
    }
    if (closed_) break;                                       // closed while this read waited
    if (!message->binary || message->data.empty()) continue;  // text is ignored (§9)
    bytes_read_ += message->data.size();
    co_return std::move(message->data);
  }
  co_return std::nullopt;
}

asio::awaitable<void> Tunnel::write(std::string_view data) {
  if (closed_) throw Error(ErrorKind::usage, op_ + ": the tunnel is closed");
  if (ended_) throw Error(ErrorKind::network, op_ + ": the target closed the connection");
  while (!data.empty()) {
    auto piece = data.substr(0, kTunnelPiece);
    data.remove_prefix(piece.size());
    co_await socket_->write(true, piece);
    bytes_written_ += piece.size();
  }
}

asio::awaitable<void> Tunnel::close() {
  if (closed_) co_return;
  closed_ = true;
  if (ended_) co_return;
  try {
    co_await socket_->close(1000);
  } catch (const Error&) {
    // Gone already: nothing to close.
  }
  // The close handshake is done (a pending read took the server's close,
  // or the close itself read up to it): nothing more will come.
  ended_ = true;
}

void Tunnel::abort() {
  closed_ = true;
  socket_->abort();
}

PortWatch::PortWatch(std::shared_ptr<WebSocket> socket, std::string op)
    : socket_(std::move(socket)), op_(std::move(op)) {}

PortWatch::~PortWatch() {
  if (socket_) socket_->abort();
}

void PortWatch::take_list(std::vector<proto::PortEvent> ports) {
  pending_ = std::move(ports);
  next_pending_ = 0;
}

void PortWatch::close() {
  if (closed_) return;
  closed_ = true;
  pending_.clear();
  next_pending_ = 0;
  socket_->abort();
}

asio::awaitable<std::optional<proto::PortEvent>> PortWatch::next() {
  for (;;) {
    if (next_pending_ < pending_.size()) co_return pending_[next_pending_++];
    if (!pending_.empty()) {
      pending_.clear();
      next_pending_ = 0;
    }
    if (ended_ || closed_) co_return std::nullopt;
    std::optional<WebSocket::Message> message;
    std::optional<Error> broke;
    try {
      message = co_await socket_->read();
    } catch (const Error& e) {
      broke = e;
    }
    if (broke) {
      ended_ = true;
      if (closed_) co_return std::nullopt;  // closed here
      throw Error(broke->kind(), op_ + ": " + broke->what());
    }
    if (!message) {
      ended_ = true;
      const auto code = socket_->close_code();
      if (closed_ || code == 1000 || code == 1001) co_return std::nullopt;
      throw Error(ErrorKind::network,
                  op_ + ": the server ended the watch (close code " + std::to_string(code) + ")");
    }
    if (message->binary) continue;
    boost::json::error_code ec;
    boost::json::value v = boost::json::parse(message->data, ec);
    if (ec || !v.is_object()) continue;  // as JS: unparsable text is ignored
    const auto& o = v.as_object();
    const std::string type = json_string(o, "type");
    if (type == "port_opened" || type == "port_closed") {
      co_return port_event_of(o, type == "port_opened");
    }
    if (type == "port_list") {  // a second list: its ports, as opened
      const auto* ports = o.if_contains("ports");
      if (ports && ports->is_array()) {
        for (const auto& p : ports->as_array()) {
          if (p.is_object()) pending_.push_back(port_event_of(p.as_object(), true));
        }
      }
    }
  }
}

asio::awaitable<std::unique_ptr<Tunnel>> Client::open_tunnel(const std::string& name, int port,
                                                             std::string_view host_view,
                                                             CallOptions options) {
  std::string host(host_view.empty() ? std::string_view("localhost") : host_view);
  // IPv6 literals go without brackets (§9).
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string op = "tunnel to " + host + ":" + std::to_string(port) + " in " + name;
  if (port < 1 || port > 65535) {
    throw Error(ErrorKind::usage, op + ": the port must be an integer from 1 to 65535");
  }
  const Millis timeout = options.timeout.value_or(config_.timeouts.exec_start);
  const auto deadline = Clock::now() + timeout;
  const std::string target = sprite_path(name) + "/proxy";
  std::shared_ptr<WebSocket> socket = co_await open_socket(target, timeout, op);
  boost::json::object init;
  init["host"] = host;
  init["port"] = port;
  const std::string init_text = boost::json::serialize(init);
  co_await socket->write(false, init_text);
  std::optional<std::string> reply = co_await text_within(socket, deadline, op);
  if (!reply) {
    throw Error(ErrorKind::protocol, op + ": the server closed the tunnel before answering (code " +
                                         std::to_string(socket->close_code()) + ")");
  }
  boost::json::error_code ec;
  boost::json::value v = boost::json::parse(*reply, ec);
  if (ec || !v.is_object()) {
    throw Error(ErrorKind::protocol, op + ": the server's reply is not a JSON object");
  }
  const auto& o = v.as_object();
  const std::string status = json_string(o, "status");
  if (status == "connected") {
    std::string named = json_string(o, "target");
    if (named.empty()) named = host + ":" + std::to_string(port);
    trace(op + ": connected");
    co_return std::make_unique<Tunnel>(std::move(socket), op, std::move(named));
  }
  socket->abort();
  if (status == "error") throw tunnel_refused(op, json_string(o, "error"));
  throw Error(ErrorKind::protocol, op + ": unexpected status '" + status + "'");
}

asio::awaitable<std::unique_ptr<PortWatch>> Client::watch_ports(const std::string& name,
                                                                CallOptions options) {
  const std::string op = "watch ports of " + name;
  const Millis timeout = options.timeout.value_or(config_.timeouts.request);
  const auto deadline = Clock::now() + timeout;
  const std::string target = sprite_path(name) + "/ports/watch";
  std::shared_ptr<WebSocket> socket = co_await open_socket(target, timeout, op);
  // The watch starts with the port_list (§6); other messages before it
  // (none are defined) are skipped.
  std::vector<proto::PortEvent> listed;
  for (;;) {
    std::optional<std::string> text = co_await text_within(socket, deadline, op);
    if (!text) {
      throw Error(ErrorKind::protocol, op + ": the server closed the watch before the port list");
    }
    boost::json::error_code ec;
    boost::json::value v = boost::json::parse(*text, ec);
    if (ec || !v.is_object()) continue;
    const auto& o = v.as_object();
    const std::string type = json_string(o, "type");
    if (type == "port_list") {
      const auto* ports = o.if_contains("ports");
      if (ports && ports->is_array()) {
        for (const auto& p : ports->as_array()) {
          if (p.is_object()) listed.push_back(port_event_of(p.as_object(), true));
        }
      }
      break;
    }
    if (type == "port_opened" || type == "port_closed") {
      // A server that sends no list: take the events as they come.
      listed.push_back(port_event_of(o, type == "port_opened"));
      break;
    }
  }
  auto watch = std::make_unique<PortWatch>(std::move(socket), op);
  watch->take_list(std::move(listed));
  co_return watch;
}

EventStream::EventStream(std::unique_ptr<BodyStream> body, std::string op, bool error_fails)
    : body_(std::move(body)), op_(std::move(op)), error_fails_(error_fails) {}

proto::ProgressEvent EventStream::checked(proto::ProgressEvent event) const {
  if (error_fails_ && event.type == "error") {
    throw Error(ErrorKind::api, op_ + ": " + (event.message.empty() ? "failed" : event.message));
  }
  return event;
}

asio::awaitable<std::optional<proto::ProgressEvent>> EventStream::next() {
  for (;;) {
    while (auto line = lines_.next_line()) {
      if (auto event = proto::parse_progress_event(*line)) co_return checked(std::move(*event));
    }
    if (ended_ || !body_) {
      if (auto last = lines_.finish()) {
        if (auto event = proto::parse_progress_event(*last)) co_return checked(std::move(*event));
      }
      co_return std::nullopt;
    }
    auto piece = co_await body_->next();
    if (!piece) {
      ended_ = true;
      continue;
    }
    if (!lines_.feed(*piece)) {
      throw Error(ErrorKind::protocol, op_ + ": an event line longer than 16 MiB");
    }
  }
}

}  // namespace spritescript::client
