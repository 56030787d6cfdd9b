// `spritescript.lineedit`: reading lines for `spritescript repl` without
// blocking the event loop.
//
// On a terminal, libedit's readline callback API does the editing: stdin
// becoming readable (an Asio wait) feeds rl_callback_read_char, and the
// line handler completes the pending read op. Elsewhere lines are read
// plainly from fd 0, still through the loop, so background tasks keep
// running while the REPL waits for input.
//
// Ctrl-C: while the REPL owns SIGINT (catch_interrupts), a signal at the
// prompt clears the line (the read op completes with false), and during a
// line it completes the op wait_interrupt returned (the REPL cancels that
// line's task); Lua code spinning in the line's own coroutine is stopped by
// a hook, as core.cpp does for scripts. core's handler exits on the second
// Ctrl-C of the process, which a REPL must survive, hence a handler here.
//
// Completion runs inside rl_callback_read_char, i.e. inside core.poll on
// the loop, not inside a task: the Lua completer is called with lua_pcall
// on a thread of its own and can never wait.
#include <editline/readline.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/bindings.hpp"
#include "bindings/lua_helpers.hpp"
#include "bindings/op.hpp"

namespace asio = boost::asio;

namespace spritescript::bindings {
namespace {

constexpr const char* kEditorKey = "spritescript.lineedit.editor";
constexpr const char* kCompleterKey = "spritescript.lineedit.completer";
constexpr const char* kCompleterThreadKey = "spritescript.lineedit.completer_thread";
constexpr const char* kInterruptibleKey = "spritescript.lineedit.interruptible";
// Set by spritescript.runtime through core.set_interrupt_error.
constexpr const char* kInterruptErrorKey = "spritescript.interrupt_error";

// ---- Ctrl-C while the REPL owns SIGINT ----------------------------------
volatile std::sig_atomic_t g_signals = 0;         // SIGINTs received
volatile std::sig_atomic_t g_hook_raised_at = 0;  // g_signals when the hook last raised
volatile std::sig_atomic_t g_signals_seen = 0;    // g_signals when last handled
lua_State* g_main_state = nullptr;
lua_State* volatile g_interruptible = nullptr;  // the running line's coroutine
int g_signal_pipe[2] = {-1, -1};
struct sigaction g_previous_sigint {};
bool g_catching = false;

bool in_stdlib_code(lua_State* L, lua_Debug* ar) {
  if (!lua_getinfo(L, "S", ar)) return false;
  return std::strncmp(ar->source, "@stdlib/", 8) == 0 ||
         std::strstr(ar->source, "/lua/stdlib/") != nullptr || ar->what[0] == 'C';
}

// Stops user code that spins without waiting, in the line's coroutine only:
// background tasks from earlier lines must not see the REPL's Ctrl-C.
void interrupt_hook(lua_State* L, lua_Debug* ar) {
  if (L != g_interruptible || in_stdlib_code(L, ar)) return;
  lua_sethook(L, nullptr, 0, 0);
  g_hook_raised_at = g_signals;
  g_signals_seen = g_signals;
  lua_getfield(L, LUA_REGISTRYINDEX, kInterruptErrorKey);
  if (lua_isnil(L, -1)) lua_pushliteral(L, "interrupted");
  lua_error(L);
}

void on_sigint(int) {
  const int saved_errno = errno;
  g_signals = g_signals + 1;
  if (g_signals - g_signals_seen >= 2) {
    // The loop did not get to the first one: code that cannot be stopped
    // (a loop in compiled code, a C call) is running. Leave as core does;
    // the prompt is not up then (the loop would have answered), so the
    // terminal is in its normal mode.
    static const char msg[] = "\nspritescript repl: interrupted twice, exiting now\n";
    (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(130);
  }
  // Armed even before a line's coroutine is set: a Ctrl-C right after Enter
  // must still stop the loop the line is about to spin in.
  if (g_main_state) {
    lua_sethook(g_main_state, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
  }
  (void)!::write(g_signal_pipe[1], "!", 1);
  errno = saved_errno;
}

bool input_readable_now(bool* hangup) {
  pollfd p{STDIN_FILENO, POLLIN, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  *hangup = (p.revents & (POLLHUP | POLLERR | POLLNVAL)) != 0 && (p.revents & POLLIN) == 0;
  return true;
}

class LineOp;
class InterruptOp;

// What a read op completes with.
enum class LineResult { line, eof, interrupted, cancelled };

struct Editor {
  static constexpr const char* kTypeName = "spritescript.lineedit.editor";

  Editor(lua_State* L, asio::io_context& io)
      : io(io), completions(completions_of(L)), signal_watch(io), input_watch(io) {}
  ~Editor();

  void start_read(std::shared_ptr<LineOp> op, const std::string& prompt);
  void finish_read(LineResult result, std::string line = {});
  void stop_read();
  void on_signal_pipe();
  void arm_signal_watch();

  // Terminal reads.
  void ensure_libedit();
  void pump_terminal();
  // Plain reads.
  bool take_buffered_line();
  void pump_plain();
  bool read_some();

  void arm_input_wait(void (Editor::*then)());
  bool open_input_watch();

  asio::io_context& io;
  std::shared_ptr<Completions> completions;
  asio::posix::stream_descriptor signal_watch;
  char signal_buf[64]{};
  bool signal_watch_armed = false;

  // stdin readiness, watched through a descriptor of its own (a reopened
  // /proc/self/fd/0 where possible): Asio sets O_NONBLOCK on what it waits
  // on, and fd 0's file description is shared with the shell.
  asio::posix::stream_descriptor input_watch;
  bool input_watch_tried = false, input_watchable = false, input_waiting = false;

  bool terminal = ::isatty(STDIN_FILENO) != 0;
  bool libedit_ready = false;
  std::string plain_buffer;
  bool plain_eof = false;

  std::shared_ptr<LineOp> reading;
  std::shared_ptr<InterruptOp> interrupt_waiter;
};

Editor* g_editor = nullptr;        // for libedit's C callbacks
bool g_handler_installed = false;  // libedit's line handler is process-wide

class LineOp final : public Op {
 public:
  LineOp(std::shared_ptr<Completions> c, Editor* editor) : Op(std::move(c)), editor_(editor) {}
  void cancel() override {
    if (!done() && editor_ && editor_->reading.get() == this) editor_->stop_read();
  }
  int push_result(lua_State* L) override {
    switch (result_) {
      case LineResult::line:
        lua::push(L, line_);
        return 1;
      case LineResult::interrupted:
        lua_pushboolean(L, 0);
        return 1;
      case LineResult::eof:
        lua_pushnil(L);
        return 1;
      case LineResult::cancelled:
        lua_pushnil(L);
        lua_pushliteral(L, "cancelled");
        return 2;
    }
    return 0;
  }
  void finish(LineResult result, std::string line) {
    result_ = result;
    line_ = std::move(line);
    complete();
  }
  void forget_editor() { editor_ = nullptr; }

 private:
  Editor* editor_;
  LineResult result_ = LineResult::cancelled;
  std::string line_;
};

class InterruptOp final : public Op {
 public:
  InterruptOp(std::shared_ptr<Completions> c, Editor* editor) : Op(std::move(c)), editor_(editor) {}
  void cancel() override {
    if (done()) return;
    if (editor_ && editor_->interrupt_waiter.get() == this) editor_->interrupt_waiter.reset();
    finish(false);
  }
  int push_result(lua_State* L) override {
    lua_pushboolean(L, interrupted_);
    return 1;
  }
  void finish(bool interrupted) {
    interrupted_ = interrupted;
    complete();
  }
  void forget_editor() { editor_ = nullptr; }

 private:
  Editor* editor_;
  bool interrupted_ = false;
};

// ---- the libedit side ------------------------------------------------------
void on_line(char* line) {
  Editor* editor = g_editor;
  std::string text = line ? line : "";
  const bool eof = line == nullptr;
  std::free(line);
  // The REPL prints nothing under a live prompt: the handler goes until the
  // next read, which installs it again (and redraws the prompt).
  rl_callback_handler_remove();
  if (!editor) return;
  g_handler_installed = false;
  if (!editor->reading) return;
  editor->finish_read(eof ? LineResult::eof : LineResult::line, std::move(text));
}

std::vector<std::string> g_candidates;
std::size_t g_next_candidate = 0;

char* next_candidate(const char*, int state) {
  if (state == 0) g_next_candidate = 0;
  if (g_next_candidate >= g_candidates.size()) return nullptr;
  return ::strdup(g_candidates[g_next_candidate++].c_str());
}

// Asks the Lua completer (set_completer) for candidates replacing `word`.
void ask_completer(const char* word) {
  g_candidates.clear();
  lua_State* main = g_main_state;
  if (!main) return;
  lua_getfield(main, LUA_REGISTRYINDEX, kCompleterThreadKey);
  lua_State* L = lua_tothread(main, -1);
  lua_pop(main, 1);  // the registry keeps the thread alive
  if (!L) return;
  const int top = lua_gettop(L);
  lua_getfield(L, LUA_REGISTRYINDEX, kCompleterKey);
  if (!lua_isfunction(L, -1)) {
    lua_settop(L, top);
    return;
  }
  lua_pushstring(L, word);
  const int point = rl_point < 0 ? 0 : rl_point;
  lua_pushlstring(L, rl_line_buffer ? rl_line_buffer : "",
                  rl_line_buffer ? std::min<std::size_t>(point, std::strlen(rl_line_buffer)) : 0);
  if (lua_pcall(L, 2, 1, 0) == 0 && lua_istable(L, -1)) {
    const int n = static_cast<int>(lua_objlen(L, -1));
    for (int i = 1; i <= n; ++i) {
      lua_rawgeti(L, -1, i);
      std::size_t len = 0;
      if (const char* s = lua_tolstring(L, -1, &len)) g_candidates.emplace_back(s, len);
      lua_pop(L, 1);
    }
  }
  lua_settop(L, top);
}

char** complete(const char* word, int, int) {
  rl_attempted_completion_over = 1;  // never fall back to file names
  rl_completion_append_character = '\0';
  try {
    ask_completer(word);
  } catch (...) {
    g_candidates.clear();
  }
  if (g_candidates.empty()) return nullptr;
  return rl_completion_matches(word, next_candidate);
}

// os.exit() from a background task while the prompt is up: the terminal
// must not stay in raw mode.
void restore_terminal_at_exit() {
  if (g_handler_installed) rl_callback_handler_remove();
}

void Editor::ensure_libedit() {
  if (libedit_ready) return;
  libedit_ready = true;
  std::atexit(restore_terminal_at_exit);
  rl_catch_signals = 0;  // SIGINT is ours (on_sigint); libedit would re-raise it
  rl_readline_name = "spritescript";
  rl_outstream = ::isatty(STDOUT_FILENO) ? stdout : stderr;
  rl_initialize();
  // Ctrl-C must not flush the keys libedit is about to read: poll() said
  // they were there, and a read(2) that finds them gone blocks the loop.
  rl_parse_and_bind("setty -d +noflsh");
  rl_attempted_completion_function = complete;
  // `.` and `:` stay inside words: `sprites.cr` and `s:ru` complete whole.
  rl_basic_word_break_characters = " \t\n\"\\'`@$><=;|&{}()[],+-*/%^~#";
  rl_completion_append_character = '\0';
}

// ---- reading -----------------------------------------------------------------
Editor::~Editor() {
  if (g_handler_installed) rl_callback_handler_remove();
  if (reading) reading->forget_editor();
  if (interrupt_waiter) interrupt_waiter->forget_editor();
  if (g_editor == this) g_editor = nullptr;
}

bool Editor::open_input_watch() {
  if (input_watch_tried) return input_watchable;
  input_watch_tried = true;
  int fd = ::open("/proc/self/fd/0", O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) fd = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
  if (fd < 0) return false;
  boost::system::error_code ec;
  input_watch.assign(fd, ec);  // fails for regular files: they never block
  if (ec) {
    ::close(fd);
    return false;
  }
  input_watchable = true;
  return true;
}

void Editor::arm_input_wait(void (Editor::*then)()) {
  if (input_waiting) return;
  input_waiting = true;
  input_watch.async_wait(asio::posix::stream_descriptor::wait_read,
                         [this, then](boost::system::error_code ec) {
                           if (ec == asio::error::operation_aborted) return;
                           input_waiting = false;
                           if (reading) (this->*then)();
                         });
}

void Editor::start_read(std::shared_ptr<LineOp> op, const std::string& prompt) {
  if (reading) throw std::runtime_error("lineedit.read_line: a read is already pending");
  reading = std::move(op);
  g_editor = this;
  if (terminal) {
    ensure_libedit();
    // Installing prints the prompt and puts the terminal in raw mode.
    rl_callback_handler_install(prompt.c_str(), on_line);
    g_handler_installed = true;
    pump_terminal();
  } else {
    pump_plain();
  }
}

void Editor::finish_read(LineResult result, std::string line) {
  auto op = std::move(reading);
  reading.reset();
  if (op) op->finish(result, std::move(line));
}

void Editor::stop_read() {
  if (g_handler_installed) {
    rl_callback_handler_remove();
    g_handler_installed = false;
  }
  finish_read(LineResult::cancelled);
}

// Feeds libedit every byte already waiting (a paste, keys typed while a line
// ran), then waits for more. Draining first matters: Asio's epoll waits are
// edge-triggered, so bytes left unread would not wake a new wait.
void Editor::pump_terminal() {
  while (reading && g_handler_installed) {
    bool hangup = false;
    if (!input_readable_now(&hangup)) break;
    if (hangup) {  // the terminal went away
      rl_callback_handler_remove();
      g_handler_installed = false;
      finish_read(LineResult::eof);
      return;
    }
    rl_callback_read_char();
  }
  if (reading && g_handler_installed) {
    if (open_input_watch()) {
      arm_input_wait(&Editor::pump_terminal);
    } else {  // cannot happen for a terminal; never spin on it
      rl_callback_handler_remove();
      g_handler_installed = false;
      finish_read(LineResult::eof);
    }
  }
}

bool Editor::take_buffered_line() {
  const auto newline = plain_buffer.find('\n');
  if (newline != std::string::npos) {
    std::string line = plain_buffer.substr(0, newline);
    plain_buffer.erase(0, newline + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    finish_read(LineResult::line, std::move(line));
    return true;
  }
  if (plain_eof) {
    if (plain_buffer.empty()) {
      finish_read(LineResult::eof);
    } else {
      std::string line = std::move(plain_buffer);
      plain_buffer.clear();
      finish_read(LineResult::line, std::move(line));
    }
    return true;
  }
  return false;
}

// One read(2) of fd 0 into the buffer; false when it would block.
bool Editor::read_some() {
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n > 0) {
      plain_buffer.append(buf, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) {
      plain_eof = true;
      return true;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
    plain_eof = true;  // a read error ends the input like EOF
    return true;
  }
}

void Editor::pump_plain() {
  while (reading) {
    if (take_buffered_line()) return;
    if (open_input_watch()) {
      bool hangup = false;
      if (!input_readable_now(&hangup) && !hangup) {
        arm_input_wait(&Editor::pump_plain);
        return;
      }
    }
    if (!read_some()) {  // fd 0 was left non-blocking by someone: wait
      if (!open_input_watch()) {
        plain_eof = true;
        continue;
      }
      arm_input_wait(&Editor::pump_plain);
      return;
    }
  }
}

// ---- Ctrl-C delivery -------------------------------------------------------
void Editor::arm_signal_watch() {
  if (signal_watch_armed) return;
  signal_watch_armed = true;
  signal_watch.async_read_some(asio::buffer(signal_buf),
                               [this](boost::system::error_code ec, std::size_t) {
                                 if (ec == asio::error::operation_aborted) return;
                                 signal_watch_armed = false;
                                 if (!ec) on_signal_pipe();
                                 if (g_catching) arm_signal_watch();
                               });
}

void Editor::on_signal_pipe() {
  g_signals_seen = g_signals;
  if (g_hook_raised_at == g_signals) return;  // the hook already stopped the line
  if (reading && terminal) {
    // At the prompt: drop what was typed and let the REPL prompt again.
    if (g_handler_installed) {
      rl_callback_handler_remove();
      g_handler_installed = false;
    }
    std::fputs("^C\n", rl_outstream ? rl_outstream : stdout);
    std::fflush(rl_outstream ? rl_outstream : stdout);
    lua_sethook(g_main_state, nullptr, 0, 0);
    finish_read(LineResult::interrupted);
    return;
  }
  if (interrupt_waiter) {  // the REPL cancels the line (and disarms the hook)
    auto op = std::move(interrupt_waiter);
    interrupt_waiter.reset();
    op->finish(true);
    return;
  }
  // Nobody waits (between lines): the Ctrl-C is dropped.
  lua_sethook(g_main_state, nullptr, 0, 0);
}

Editor& editor_of(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kEditorKey);
  auto* editor = static_cast<Editor*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  if (!editor) throw std::runtime_error("spritescript.lineedit is not open");
  return *editor;
}

// ---- Lua functions -----------------------------------------------------------

// lineedit.read_line(prompt) -> op, id. The op gives the line (without its
// newline), nil at the end of input, false for Ctrl-C at the prompt. The
// prompt is shown on a terminal only.
int l_read_line(lua_State* L) {
  std::string prompt(lua::check_string(L, 1));
  Editor& editor = editor_of(L);
  auto op = std::make_shared<LineOp>(editor.completions, &editor);
  editor.start_read(op, prompt);
  push_op(L, op);
  lua_pushnumber(L, static_cast<lua_Number>(op->id()));
  return 2;
}

// lineedit.is_terminal() -> whether read_line edits with libedit
int l_is_terminal(lua_State* L) {
  lua_pushboolean(L, editor_of(L).terminal);
  return 1;
}

// lineedit.add_history(entry): a multi-line chunk stays one entry.
int l_add_history(lua_State* L) {
  const char* entry = luaL_checkstring(L, 1);
  Editor& editor = editor_of(L);
  if (!editor.terminal) return 0;
  editor.ensure_libedit();
  add_history(entry);
  return 0;
}

// lineedit.load_history(path) -> true | nil, message
int l_load_history(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  Editor& editor = editor_of(L);
  if (!editor.terminal) return 0;
  editor.ensure_libedit();
  if (read_history(path) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, std::strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

// lineedit.save_history(path, max_entries) -> true | nil, message
int l_save_history(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  const int max_entries = static_cast<int>(luaL_optinteger(L, 2, 1000));
  Editor& editor = editor_of(L);
  if (!editor.terminal) return 0;
  editor.ensure_libedit();
  stifle_history(max_entries);
  // The state directory may not exist yet (a first run).
  std::error_code ignored;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ignored);
  errno = 0;
  if (write_history(path) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, std::strerror(errno ? errno : EIO));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

// lineedit.set_completer(fn): fn(word, line_before_cursor) -> array of
// candidates that replace `word`. It runs outside any task: it must not wait.
int l_set_completer(lua_State* L) {
  if (!lua_isnil(L, 1)) luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, kCompleterKey);
  return 0;
}

// lineedit.catch_interrupts(on): while on, Ctrl-C is the REPL's (see the
// top of this file); off restores the previous SIGINT handler.
int l_catch_interrupts(lua_State* L) {
  const bool on = lua_toboolean(L, 1) != 0;
  Editor& editor = editor_of(L);
  if (on && !g_catching) {
    if (g_signal_pipe[0] < 0) {
      if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
        throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
      }
      editor.signal_watch.assign(::fcntl(g_signal_pipe[0], F_DUPFD_CLOEXEC, 3));
    }
    struct sigaction sa {};
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &sa, &g_previous_sigint);
    g_catching = true;
    editor.arm_signal_watch();
  } else if (!on && g_catching) {
    ::sigaction(SIGINT, &g_previous_sigint, nullptr);
    g_catching = false;
    boost::system::error_code ignored;
    editor.signal_watch.cancel(ignored);
    editor.signal_watch_armed = false;
    g_interruptible = nullptr;
    lua_sethook(g_main_state, nullptr, 0, 0);
  }
  return 0;
}

// lineedit.wait_interrupt() -> op, id: completes with true at the next Ctrl-C
// that is not at the prompt (while catch_interrupts is on).
int l_wait_interrupt(lua_State* L) {
  Editor& editor = editor_of(L);
  auto op = std::make_shared<InterruptOp>(editor.completions, &editor);
  if (editor.interrupt_waiter) editor.interrupt_waiter->cancel();
  editor.interrupt_waiter = op;
  push_op(L, op);
  lua_pushnumber(L, static_cast<lua_Number>(op->id()));
  return 2;
}

// lineedit.set_interruptible(co | nil): the coroutine whose spinning code a
// Ctrl-C stops (the running line's task). nil also disarms a pending hook.
int l_set_interruptible(lua_State* L) {
  lua_State* thread = lua_isnoneornil(L, 1) ? nullptr : lua_tothread(L, 1);
  if (!lua_isnoneornil(L, 1) && !thread) luaL_argerror(L, 1, "expected a coroutine or nil");
  lua_settop(L, 1);
  lua_setfield(L, LUA_REGISTRYINDEX, kInterruptibleKey);  // keeps it alive
  g_interruptible = thread;
  // Only our own hook: without catch_interrupts the hook is core's.
  if (!thread && g_catching) lua_sethook(g_main_state, nullptr, 0, 0);
  return 0;
}

}  // namespace

void open_lineedit(lua_State* L, asio::io_context& io) {
  lua::StackGuard guard(L);
  g_main_state = L;

  luaL_newmetatable(L, Editor::kTypeName);
  lua_pushcfunction(L, lua::gc_userdata<Editor>);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua::new_userdata<Editor>(L, L, io);
  lua_setfield(L, LUA_REGISTRYINDEX, kEditorKey);

  lua_newthread(L);  // where completers run (never inside a task)
  lua_setfield(L, LUA_REGISTRYINDEX, kCompleterThreadKey);

  static const luaL_Reg functions[] = {{"read_line", lua::guarded<l_read_line>},
                                       {"is_terminal", lua::guarded<l_is_terminal>},
                                       {"add_history", lua::guarded<l_add_history>},
                                       {"load_history", lua::guarded<l_load_history>},
                                       {"save_history", lua::guarded<l_save_history>},
                                       {"set_completer", l_set_completer},
                                       {"catch_interrupts", lua::guarded<l_catch_interrupts>},
                                       {"wait_interrupt", lua::guarded<l_wait_interrupt>},
                                       {"set_interruptible", l_set_interruptible},
                                       {nullptr, nullptr}};
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_newtable(L);
  luaL_register(L, nullptr, functions);
  lua_setfield(L, -2, "spritescript.lineedit");
  lua_pop(L, 1);
}

}  // namespace spritescript::bindings
