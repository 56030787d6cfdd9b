// `spritescript.terminal`: the local terminal for the console and attach
// (lua/stdlib/spritescript/cli/console.lua): raw mode on stdin, the window
// size, window changes (SIGWINCH) and stdin reads as ops, and full writes
// to stdout. Internal: the built-in commands use it; scripts need not.
//
// Raw mode is undone on every way out of the process we can see: restore()
// from Lua (the console's cleanup), the Lua state closing, exit() (an
// atexit handler), and the fatal signals whose default action would end the
// process with the terminal still raw (SIGTERM, SIGHUP, SIGQUIT, SIGABRT,
// SIGSEGV, SIGBUS): their handler restores the saved modes and re-raises
// the signal with its default action. In raw mode the terminal sends Ctrl-C
// as a byte (0x03), not as SIGINT.
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
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

constexpr const char* kTerminalKey = "spritescript.terminal.state";

// ---- raw mode and its undoing ------------------------------------------------
// Plain globals: the signal handler and the atexit handler read them.
struct termios g_saved_modes {};
volatile std::sig_atomic_t g_raw = 0;
bool g_exit_handlers_installed = false;

constexpr int kFatalSignals[] = {SIGTERM, SIGHUP, SIGQUIT, SIGABRT, SIGSEGV, SIGBUS};

void restore_modes() {
  if (g_raw) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_modes);  // async-signal-safe
    g_raw = 0;
  }
}

void on_fatal_signal(int sig) {
  const int saved_errno = errno;
  restore_modes();
  // Die of the signal as if we had not caught it (SA_RESETHAND made the
  // disposition the default again; the signal is delivered on return).
  ::raise(sig);
  errno = saved_errno;
}

void install_exit_handlers() {
  if (g_exit_handlers_installed) return;
  g_exit_handlers_installed = true;
  std::atexit(restore_modes);
  for (int sig : kFatalSignals) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0) continue;
    // Someone else's handler (or an ignored SIGHUP under nohup) stays.
    if ((old.sa_flags & SA_SIGINFO) || old.sa_handler != SIG_DFL) continue;
    struct sigaction sa {};
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    ::sigaction(sig, &sa, nullptr);
  }
}

// ---- the binding's state ---------------------------------------------------------
class ResizeOp;

struct TerminalState {
  static constexpr const char* kTypeName = "spritescript.terminal.state";
  explicit TerminalState(asio::io_context& io) : io(io) {}
  ~TerminalState() { restore_modes(); }
  TerminalState(const TerminalState&) = delete;
  TerminalState& operator=(const TerminalState&) = delete;

  asio::io_context& io;
  // stdin (a dup of fd 0) registered with the loop, made at the first read.
  // Only readiness is awaited on it: the descriptor stays blocking, so the
  // shell that started us does not inherit an O_NONBLOCK terminal.
  std::unique_ptr<asio::posix::stream_descriptor> input;
  bool input_pollable = true;  // false for a regular file: always ready
  // SIGWINCH, watched from the first terminal.resized() on; a change with
  // nobody waiting is remembered for the next waiter.
  std::unique_ptr<asio::signal_set> winch;
  bool resize_pending = false;
  std::vector<std::weak_ptr<ResizeOp>> resize_waiters;

  void arm_winch();
};

TerminalState& state_of(lua_State* L) {
  lua_getfield(L, LUA_REGISTRYINDEX, kTerminalKey);
  auto* state = static_cast<TerminalState*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return *state;
}

// ---- ops -------------------------------------------------------------------------

// terminal.read(max): the next bytes on stdin.
class ReadOp final : public Op {
 public:
  ReadOp(std::shared_ptr<Completions> c, std::size_t max) : Op(std::move(c)), max_(max) {}

  void start(TerminalState& state) {
    if (!state.input && state.input_pollable) {
      const int fd = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
      if (fd < 0) {
        fail(std::string("stdin: ") + std::strerror(errno));
        return;
      }
      auto input = std::make_unique<asio::posix::stream_descriptor>(state.io);
      boost::system::error_code ec;
      input->assign(fd, ec);
      if (ec) {
        ::close(fd);
        state.input_pollable = false;  // a regular file: epoll refuses it
      } else {
        state.input = std::move(input);
      }
    }
    input_ = state.input.get();
    wait(state.io);
  }

  void cancel() override {
    if (!done()) signal_.emit(asio::cancellation_type::terminal);
  }

  int push_result(lua_State* L) override {
    if (!error_.empty()) {
      lua_pushnil(L);
      lua_createtable(L, 0, 2);
      lua::push(L, "error");
      lua_setfield(L, -2, "kind");
      lua::push(L, error_);
      lua_setfield(L, -2, "message");
      return 2;
    }
    if (!data_) {
      lua_pushnil(L);
      return 1;
    }
    lua::push(L, *data_);
    data_.reset();
    return 1;
  }

 private:
  void wait(asio::io_context& io) {
    auto self = std::static_pointer_cast<ReadOp>(shared_from_this());
    if (!input_) {  // a regular file: always ready
      asio::post(io, [self, &io] {
        if (!self->done() && !self->read_now()) self->wait(io);
      });
      return;
    }
    input_->async_wait(
        asio::posix::descriptor_base::wait_read,
        asio::bind_cancellation_slot(signal_.slot(), [self, &io](boost::system::error_code ec) {
          if (ec == asio::error::operation_aborted) {
            self->fail("reading stdin: cancelled");
            return;
          }
          if (ec) self->input_ = nullptr;  // not a pollable file (epoll said no): just read
          if (!self->read_now()) self->wait(io);
        }));
  }

  // Reads what is there; false when nothing was (another reader took it).
  bool read_now() {
    if (input_) {
      struct pollfd p {
        STDIN_FILENO, POLLIN, 0
      };
      if (::poll(&p, 1, 0) == 0) return false;
    }
    std::string buffer(max_, '\0');
    ssize_t n;
    do {
      n = ::read(STDIN_FILENO, buffer.data(), buffer.size());
    } while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n < 0 && errno == EIO) n = 0;  // the terminal hung up: the end of input
    if (n < 0) {
      fail(std::string("reading stdin: ") + std::strerror(errno));
      return true;
    }
    if (n > 0) {
      buffer.resize(static_cast<std::size_t>(n));
      data_ = std::move(buffer);
    }
    complete();
    return true;
  }

  void fail(std::string message) {
    error_ = std::move(message);
    complete();
  }

  std::size_t max_;
  asio::posix::stream_descriptor* input_ = nullptr;  // owned by TerminalState
  asio::cancellation_signal signal_;
  std::optional<std::string> data_;
  std::string error_;
};

// terminal.resized(): the next change of the window size.
class ResizeOp final : public Op {
 public:
  explicit ResizeOp(std::shared_ptr<Completions> c) : Op(std::move(c)) {}
  void finish(bool changed) {
    if (done()) return;
    changed_ = changed;
    complete();
  }
  void cancel() override { finish(false); }
  int push_result(lua_State* L) override {
    lua_pushboolean(L, changed_);
    return 1;
  }

 private:
  bool changed_ = false;
};

void TerminalState::arm_winch() {
  winch->async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;  // the state is going away
    std::vector<std::weak_ptr<ResizeOp>> waiters;
    waiters.swap(resize_waiters);
    bool woke = false;
    for (auto& weak : waiters) {
      if (auto op = weak.lock(); op && !op->done()) {
        op->finish(true);
        woke = true;
      }
    }
    if (!woke) resize_pending = true;
    arm_winch();
  });
}

// ---- functions -------------------------------------------------------------------

// terminal.raw() -> true | nil, message. Saves stdin's modes and makes the
// terminal raw: bytes as typed, no echo, no signals from keys.
int l_raw(lua_State* L) {
  if (g_raw) {
    lua_pushboolean(L, 1);
    return 1;
  }
  struct termios modes {};
  if (::tcgetattr(STDIN_FILENO, &modes) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "stdin is not a terminal (%s)", std::strerror(errno));
    return 2;
  }
  install_exit_handlers();
  g_saved_modes = modes;
  struct termios raw = modes;
  ::cfmakeraw(&raw);
  raw.c_cc[VMIN] = 1;
  raw.c_cc[VTIME] = 0;
  g_raw = 1;  // before the switch: a signal in between restores the saved modes
  if (::tcsetattr(STDIN_FILENO, TCSANOW, &raw) != 0) {
    g_raw = 0;
    lua_pushnil(L);
    lua_pushfstring(L, "cannot make the terminal raw (%s)", std::strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

// terminal.restore(): the modes raw() saved (nothing when not raw).
int l_restore(lua_State*) {
  restore_modes();
  return 0;
}

int l_is_raw(lua_State* L) {
  lua_pushboolean(L, g_raw != 0);
  return 1;
}

// terminal.size([fd]) -> cols, rows | nil. Without fd: stdin's terminal,
// else stdout's, else stderr's.
int l_size(lua_State* L) {
  std::vector<int> fds;
  if (lua_isnoneornil(L, 1)) {
    fds = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO};
  } else {
    fds = {static_cast<int>(luaL_checkinteger(L, 1))};
  }
  for (int fd : fds) {
    struct winsize size {};
    if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0 && size.ws_row > 0) {
      lua_pushinteger(L, size.ws_col);
      lua_pushinteger(L, size.ws_row);
      return 2;
    }
  }
  return 0;
}

// terminal.read([max]) -> op, id: completes with 1..max bytes (4096 by
// default) from stdin, nil at its end, or nil, {kind=, message=}.
int l_read(lua_State* L) {
  const lua_Integer max = luaL_optinteger(L, 1, 4096);
  if (max < 1) return luaL_error(L, "terminal.read: max must be at least 1");
  TerminalState& state = state_of(L);
  auto op = std::make_shared<ReadOp>(completions_of(L),
                                     static_cast<std::size_t>(std::min<lua_Integer>(max, 1 << 20)));
  op->start(state);
  push_op(L, op);
  lua_pushnumber(L, static_cast<lua_Number>(op->id()));
  return 2;
}

// terminal.resized() -> op, id: completes with true at the next window
// change (at once when one came since the last op finished), false when
// cancelled. The first call starts watching SIGWINCH.
int l_resized(lua_State* L) {
  TerminalState& state = state_of(L);
  if (!state.winch) {
    state.winch = std::make_unique<asio::signal_set>(state.io, SIGWINCH);
    state.arm_winch();
  }
  auto op = std::make_shared<ResizeOp>(completions_of(L));
  if (state.resize_pending) {
    state.resize_pending = false;
    op->finish(true);
  } else {
    auto& waiters = state.resize_waiters;
    waiters.erase(std::remove_if(waiters.begin(), waiters.end(),
                                 [](const std::weak_ptr<ResizeOp>& w) { return w.expired(); }),
                  waiters.end());
    waiters.push_back(op);
  }
  push_op(L, op);
  lua_pushnumber(L, static_cast<lua_Number>(op->id()));
  return 2;
}

// terminal.write(data [, fd]): writes all of data to stdout (or fd) now,
// waiting while the terminal is full, even on a non-blocking descriptor.
int l_write(lua_State* L) {
  size_t len = 0;
  const char* data = luaL_checklstring(L, 1, &len);
  const int fd = static_cast<int>(luaL_optinteger(L, 2, STDOUT_FILENO));
  while (len > 0) {
    const ssize_t n = ::write(fd, data, len);
    if (n > 0) {
      data += n;
      len -= static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p {
        fd, POLLOUT, 0
      };
      ::poll(&p, 1, -1);
    } else {
      return luaL_error(L, "writing to the terminal: %s", std::strerror(errno));
    }
  }
  return 0;
}

}  // namespace

void open_terminal(lua_State* L, asio::io_context& io) {
  lua::StackGuard guard(L);
  luaL_newmetatable(L, TerminalState::kTypeName);
  lua_pushcfunction(L, lua::gc_userdata<TerminalState>);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  lua::new_userdata<TerminalState>(L, io);
  lua_setfield(L, LUA_REGISTRYINDEX, kTerminalKey);

  static const luaL_Reg functions[] = {{"raw", lua::guarded<l_raw>},
                                       {"restore", l_restore},
                                       {"is_raw", l_is_raw},
                                       {"size", lua::guarded<l_size>},
                                       {"read", lua::guarded<l_read>},
                                       {"resized", lua::guarded<l_resized>},
                                       {"write", l_write},
                                       {nullptr, nullptr}};
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_newtable(L);
  luaL_register(L, nullptr, functions);
  lua_setfield(L, -2, "spritescript.terminal");
  lua_pop(L, 1);
}

}  // namespace spritescript::bindings
