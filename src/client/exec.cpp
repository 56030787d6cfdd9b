// Exec over WebSocket (spec §3) and HTTP (§4), and the ExecProcess that
// decodes a running command's frames.
#include "client/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cstdio>

namespace spritescript::client {

namespace {

using Clock = std::chrono::steady_clock;
// Messages are named locals rather than temporaries inside a co_await
// expression: GCC 12 mishandled such a temporary in the engine's exit
// frame. Large stdin goes out in pieces so output keeps flowing meanwhile.
constexpr std::size_t kStdinPiece = std::size_t{256} * 1024;

ExecEvent output_event(proto::StreamId stream, std::string data) {
  ExecEvent e;
  e.stream = stream;
  e.data = std::move(data);
  return e;
}

ExecEvent exit_event(int code) {
  ExecEvent e;
  e.type = ExecEvent::Type::exit;
  e.exit_code = code;
  return e;
}

std::string incomplete(const std::string& op, const std::string& why) {
  return op + ": " + why + " before the command exited; output may be incomplete";
}

// What a message of the exec socket means; nullopt for what is ignored.
std::optional<ExecEvent> decode(const WebSocket::Message& message, bool tty,
                                proto::SessionInfo& session) {
  if (message.binary) {
    if (tty) return output_event(proto::StreamId::stdout_data, message.data);
    auto frame = proto::decode_frame(message.data);
    if (!frame) return std::nullopt;
    switch (frame->id) {
      case proto::StreamId::stdout_data:
      case proto::StreamId::stderr_data:
        if (frame->payload.empty()) return std::nullopt;
        return output_event(frame->id, std::string(frame->payload));
      case proto::StreamId::exit:
        return exit_event(proto::exit_code_of(*frame));
      default:
        return std::nullopt;
    }
  }
  auto control = proto::parse_control_message(message.data);
  if (!control) return std::nullopt;
  switch (control->type) {
    case proto::ControlMessage::Type::session_info:
      session = control->session;
      return std::nullopt;
    case proto::ControlMessage::Type::exit:
      return exit_event(control->exit_code);
    case proto::ControlMessage::Type::port: {
      ExecEvent e;
      e.type = ExecEvent::Type::port;
      e.port = control->port;
      return e;
    }
    default:
      return std::nullopt;
  }
}

asio::awaitable<void> close_quietly(std::shared_ptr<WebSocket> socket) {
  try {
    co_await socket->close(1000);
  } catch (const std::exception&) {
    // The server may have dropped the connection first: nothing to do.
  }
}

}  // namespace

ExecProcess::ExecProcess(std::shared_ptr<WebSocket> socket, std::string op, bool tty,
                         Client* client, std::string sprite)
    : socket_(std::move(socket)),
      op_(std::move(op)),
      tty_(tty),
      client_(client),
      sprite_(std::move(sprite)) {}

ExecProcess::~ExecProcess() {
  // Dropped without detach(): the connection goes; the server keeps the
  // session for max_run_after_disconnect.
  if (socket_ && !closed_) socket_->abort();
}

asio::awaitable<void> ExecProcess::start() {
  for (;;) {
    auto message = co_await socket_->read();
    if (!message) {
      throw Error(ErrorKind::protocol,
                  op_ + ": the server closed the connection before session_info");
    }
    if (!message->binary) {
      auto control = proto::parse_control_message(message->data);
      if (control && control->type == proto::ControlMessage::Type::session_info) {
        session_ = control->session;
        tty_ = session_.tty;  // an attach learns the session's mode here (§3.7.4)
        co_return;
      }
    }
    // Output before session_info is replayed history (JS calls it so).
    if (auto event = decode(*message, tty_, session_)) {
      early_.push_back(std::move(*event));
      if (early_.back().type == ExecEvent::Type::exit) co_return;
    }
  }
}

asio::awaitable<ExecEvent> ExecProcess::next() {
  if (!early_.empty()) {
    ExecEvent e = std::move(early_.front());
    early_.erase(early_.begin());
    if (e.type == ExecEvent::Type::exit) exit_code_ = e.exit_code;
    if (e.type == ExecEvent::Type::output) delivered_ += e.data.size();
    co_return e;
  }
  if (exit_code_) throw Error(ErrorKind::usage, op_ + ": the command already exited");
  if (closed_) throw Error(ErrorKind::usage, op_ + ": detached from the command");
  for (;;) {
    std::optional<WebSocket::Message> message;
    std::optional<Error> broke;
    try {
      message = co_await socket_->read();
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      broke = e;
    }
    if (!broke && !message) {
      // TTY servers that send no exit message still say it by close code
      // (§3.7.3): 1000 is 0, 4000+N is N.
      auto code = socket_->close_code();
      if (tty_ && (code == 1000 || (code >= 4000 && code <= 4255))) {
        closed_ = true;
        exit_code_ = code == 1000 ? 0 : code - 4000;
        co_return exit_event(*exit_code_);
      }
      broke = Error(ErrorKind::network,
                    "the server closed the connection (code " + std::to_string(code) + ")");
    }
    if (broke) {
      co_await resume(*broke);
      continue;
    }
    auto event = decode(*message, tty_, session_);
    if (!event) continue;
    if (event->type == ExecEvent::Type::output) {
      if (skip_ >= event->data.size()) {  // replayed: the caller has it already
        skip_ -= event->data.size();
        continue;
      }
      event->data.erase(0, skip_);
      skip_ = 0;
      delivered_ += event->data.size();
    }
    if (event->type == ExecEvent::Type::exit) {
      exit_code_ = event->exit_code;
      closed_ = true;
      // The close handshake goes on in the background: the caller has its
      // answer now (as the SDKs, which close without waiting).
      asio::co_spawn(co_await asio::this_coro::executor, close_quietly(socket_), asio::detached);
    }
    co_return std::move(*event);
  }
}

asio::awaitable<void> ExecProcess::resume(const Error& broke) {
  constexpr int kMaxReattach = 3;
  const std::string why = std::string("the connection broke (") + broke.what() + ")";
  if (!client_ || session_.session_id.empty() || reattaches_ >= kMaxReattach) {
    throw Error(broke.kind(), incomplete(op_, why));
  }
  if (!resumable_) throw Error(broke.kind(), incomplete(op_, why + " while sending stdin"));
  ++reattaches_;
  socket_->abort();
  retired_.push_back(socket_);
  std::unique_ptr<WebSocket> fresh;
  std::string failed;
  try {
    fresh = co_await client_->reopen_session(sprite_, session_.session_id);
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::cancelled) throw;
    failed = e.what();
  }
  if (!fresh) throw Error(broke.kind(), incomplete(op_, why + "; reattaching failed: " + failed));
  socket_ = std::move(fresh);
  // The new connection starts with session_info; the replay follows.
  auto first = co_await socket_->read();
  auto control = first && !first->binary ? proto::parse_control_message(first->data) : std::nullopt;
  if (!control || control->type != proto::ControlMessage::Type::session_info) {
    throw Error(ErrorKind::protocol,
                incomplete(op_, why + "; the reattached session sent no session_info"));
  }
  auto offset = control->session.replay_offset;
  if (!offset) {
    throw Error(broke.kind(),
                incomplete(op_, why + "; the server cannot say where its replay starts"));
  }
  if (*offset > delivered_) {
    throw Error(broke.kind(),
                incomplete(op_, why + "; " + std::to_string(*offset - delivered_) +
                                    " bytes of output were dropped from the server's buffer"));
  }
  skip_ = delivered_ - *offset;
}

asio::awaitable<void> ExecProcess::write(std::string_view data) {
  if (closed_) throw Error(ErrorKind::usage, op_ + ": the connection is closed");
  while (!data.empty()) {
    auto piece = data.substr(0, kStdinPiece);
    data.remove_prefix(piece.size());
    if (tty_) {
      co_await socket_->write(true, piece);
    } else {
      const std::string frame = proto::encode_frame(proto::StreamId::stdin_data, piece);
      co_await socket_->write(true, frame);
    }
  }
}

asio::awaitable<void> ExecProcess::close_stdin() {
  if (tty_ || closed_) co_return;  // a TTY has no EOF frame; Ctrl-D is data
  const std::string frame = proto::encode_frame(proto::StreamId::stdin_eof, {});
  co_await socket_->write(true, frame);
}

asio::awaitable<void> ExecProcess::resize(int cols, int rows) {
  if (closed_) co_return;
  const std::string message = proto::resize_message(cols, rows);
  co_await socket_->write(false, message);
}

asio::awaitable<void> ExecProcess::signal(std::string_view name) {
  if (closed_) throw Error(ErrorKind::usage, op_ + ": the connection is closed");
  const std::string message = proto::signal_message(name);
  co_await socket_->write(false, message);
}

void ExecProcess::abort() {
  if (!closed_) socket_->abort();
  closed_ = true;
}

asio::awaitable<void> ExecProcess::detach() {
  if (closed_) co_return;
  closed_ = true;
  co_await socket_->close(1000);
}

// --- Client: exec -------------------------------------------------------------

asio::awaitable<std::unique_ptr<WebSocket>> Client::open_socket(const std::string& target,
                                                                Millis timeout,
                                                                const std::string& op) {
  const Headers headers = make("GET", target).headers;  // the token and user agent
  const int attempts = std::max(1, config_.retry.max_attempts);
  for (int attempt = 0;; ++attempt) {
    auto start = Clock::now();
    auto upgrade = co_await transport_->open_websocket(target, headers, timeout);
    int status = upgrade.socket ? 101 : upgrade.refused.status;
    trace_answer("WebSocket", target, status, start);
    if (upgrade.socket) co_return std::move(upgrade.socket);
    const Response& refused = upgrade.refused;
    auto error =
        error_from_response(op, refused.status, refused.body, refused.header("Retry-After"));
    // A refused upgrade ran nothing: waking failures and rate limits retry.
    bool retry = retryable_status(status) && attempt + 1 < attempts &&
                 (!error.retry_after() || *error.retry_after() <= config_.retry.max_retry_after);
    if (!retry) throw error;
    co_await backoff(attempt, error.retry_after(), op);
  }
}

asio::awaitable<std::unique_ptr<ExecProcess>> Client::open_exec(const std::string& name,
                                                                const std::string& target, bool tty,
                                                                Millis timeout,
                                                                const std::string& op) {
  auto socket = co_await open_socket(target, timeout, op);
  auto process = std::make_unique<ExecProcess>(std::move(socket), op, tty, this, name);
  co_await process->start();
  co_return process;
}

asio::awaitable<std::unique_ptr<WebSocket>> Client::reopen_session(const std::string& name,
                                                                   const std::string& session_id) {
  const std::string op = "reattach to session " + session_id + " on " + name;
  std::string target =
      sprite_path(name) + "/exec/" + proto::percent_encode(session_id) + "?stdin=true";
  const int attempts = std::max(1, config_.retry.max_attempts);
  for (int attempt = 0;; ++attempt) {
    bool network_failure = false;
    try {
      co_return co_await open_socket(target, config_.timeouts.exec_start, op);
    } catch (const Error& e) {
      // The network may be back in a moment; anything else is final.
      if (e.kind() != ErrorKind::network || attempt + 1 >= attempts) throw;
      network_failure = true;
    }
    if (network_failure) co_await backoff(attempt, std::nullopt, op);
  }
}

asio::awaitable<std::unique_ptr<ExecProcess>> Client::exec(const std::string& name,
                                                           const proto::ExecOptions& options,
                                                           CallOptions call) {
  if (options.argv.empty()) throw Error(ErrorKind::usage, "exec on " + name + ": no command");
  std::string target = sprite_path(name) + "/exec?" + proto::exec_query(options);
  co_return co_await open_exec(name, target, options.tty,
                               call.timeout.value_or(config_.timeouts.exec_start),
                               "exec " + options.argv.front() + " on " + name);
}

asio::awaitable<std::unique_ptr<ExecProcess>> Client::attach(const std::string& name,
                                                             const std::string& session_id,
                                                             CallOptions call) {
  std::string target =
      sprite_path(name) + "/exec/" + proto::percent_encode(session_id) + "?stdin=true";
  co_return co_await open_exec(name, target, false,
                               call.timeout.value_or(config_.timeouts.exec_start),
                               "attach to session " + session_id + " on " + name);
}

namespace {

struct Feed {
  bool done = false;
  std::unique_ptr<asio::steady_timer> wake;
};

// Writes stdin then EOF while the caller reads output (a command that
// writes while it reads must not deadlock against us).
asio::awaitable<void> feed_stdin(ExecProcess* process, std::string data,
                                 std::shared_ptr<Feed> feed) {
  try {
    co_await process->write(data);
    co_await process->close_stdin();
    process->set_resumable(true);  // all of stdin is with the server now
  } catch (const Error&) {
    // The command exited (or the connection broke) before taking it all:
    // the reader reports what matters.
  }
  feed->done = true;
  feed->wake->cancel();
}

}  // namespace

asio::awaitable<ExecResult> Client::run(const std::string& name, const proto::ExecOptions& options,
                                        std::string stdin_data, CallOptions call) {
  proto::ExecOptions query = options;
  // No input: the server closes stdin at the start, no EOF frame needed.
  if (stdin_data.empty() && !options.tty) query.stdin = false;
  auto process = co_await exec(name, query, call);
  auto feed = std::make_shared<Feed>();
  feed->wake = std::make_unique<asio::steady_timer>(executor_, Clock::time_point::max());
  if (stdin_data.empty()) {
    feed->done = true;
  } else {
    process->set_resumable(false);
    asio::co_spawn(executor_, feed_stdin(process.get(), std::move(stdin_data), feed),
                   asio::detached);
  }
  ExecResult result;
  std::optional<Error> failure;
  try {
    for (;;) {
      auto event = co_await process->next();
      if (event.type == ExecEvent::Type::exit) {
        result.exit_code = event.exit_code;
        break;
      }
      if (event.type != ExecEvent::Type::output) continue;
      (event.stream == proto::StreamId::stderr_data ? result.stderr_data : result.stdout_data) +=
          event.data;
    }
  } catch (const Error& e) {
    failure = e;
  }
  // The feeder holds a pointer to the process: let it finish first.
  if (!feed->done) {
    if (failure) process->abort();  // the feeder's pending write fails
    co_await feed->wake->async_wait(asio::as_tuple(asio::use_awaitable));
  }
  if (failure) throw *failure;
  co_return result;
}

asio::awaitable<ExecResult> Client::run_http(const std::string& name,
                                             const proto::ExecOptions& options,
                                             std::string stdin_data, CallOptions call) {
  if (options.argv.empty()) throw Error(ErrorKind::usage, "exec on " + name + ": no command");
  if (options.tty) throw Error(ErrorKind::usage, "HTTP exec cannot run a TTY");
  const std::string op = "exec " + options.argv.front() + " on " + name + " (HTTP)";
  proto::ExecOptions query = options;
  query.stdin = !stdin_data.empty();
  auto r = make("POST", sprite_path(name) + "/exec?" + proto::exec_query(query));
  r.body = std::move(stdin_data);
  r.content_type = "application/octet-stream";
  auto start = Clock::now();
  auto body =
      co_await transport_->open_stream(r, call.timeout.value_or(config_.timeouts.exec_start));
  trace_answer("POST", r.target, body->status, start);
  if (body->status != 200) {
    std::string text = co_await body->read_all();
    throw error_from_response(op, body->status, text, "");
  }
  ExecResult result;
  bool exited = false;
  // One HTTP chunk is one frame (§4).
  for (;;) {
    std::optional<std::string> chunk;
    std::optional<Error> broke;
    try {
      chunk = co_await body->next();
    } catch (const Error& e) {
      if (e.kind() == ErrorKind::cancelled) throw;
      broke = e;
    }
    // A POST exec is not replayed: the command may have done its work.
    if (broke) {
      throw Error(broke->kind(),
                  incomplete(op, std::string("the connection broke (") + broke->what() + ")"));
    }
    if (!chunk) break;
    auto frame = proto::decode_frame(*chunk);
    if (!frame) throw Error(ErrorKind::protocol, op + ": a chunk that is not an exec frame");
    if (frame->id == proto::StreamId::stdout_data) {
      result.stdout_data.append(frame->payload);
    } else if (frame->id == proto::StreamId::stderr_data) {
      result.stderr_data.append(frame->payload);
    } else if (frame->id == proto::StreamId::exit) {
      result.exit_code = proto::exit_code_of(*frame);
      exited = true;
    }
  }
  if (!exited) throw Error(ErrorKind::network, incomplete(op, "the response ended"));
  co_return result;
}

}  // namespace spritescript::client
