// bench/client_bench.cpp: the C++ side of bench/client.sh, which compares
// this client (src/client) with the official JS SDK (bench/client_bench.mjs)
// against one local engine. Each subcommand runs one benchmark in a fresh
// process and prints one JSON line of results (on stdout; progress and
// errors on stderr), so that the peak RSS it reports is that benchmark's.
//
//   client_bench [--url URL] [--token TOKEN] [--sprite NAME] COMMAND ...
//
//   create                 create the sprite and run `true` in it once (warms it)
//   seq N                  N sequential `true` execs over the WebSocket (Client::run)
//   par N K                N `true` execs, K in flight at once
//   stream BYTES           `head -c BYTES /dev/zero`: stdout counted through
//                          Client::exec + ExecProcess::next(), never kept
//   sessions N [K]         N `sleep 600` execs open at once (at most K opening
//                          at a time, default 64), the RSS measured while all
//                          are open, then each killed (signal KILL, read to its exit)
//
// URL and token default to SPRITES_API_URL and SPRITES_TOKEN (or the other
// variables client::config_from_environment reads); the sprite to
// BENCH_SPRITE, else "bench". WARMUP (default 20) untimed `true` execs run
// before seq and par. Exit status: 0, 1 when a benchmark failed (the
// message on stderr), 2 for usage.
//
// Memory: VmHWM (peak RSS) and VmRSS from /proc/self/status at the end, and
// for `sessions` also while every session is open. CPU: the process's user
// and system time (getrusage).
#include "client/client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace asio = boost::asio;
namespace client = spritescript::client;
namespace proto = spritescript::proto;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string url, token, sprite, command;
  std::vector<std::string> rest;
};

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr, "client_bench: %s\n", why.c_str());
  std::fprintf(stderr,
               "usage: client_bench [--url URL] [--token TOKEN] [--sprite NAME] "
               "create | seq N | par N K | stream BYTES | sessions N [K]\n");
  std::exit(2);
}

long long number(const std::string& text, const char* what) {
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || v <= 0) usage(std::string(what) + " must be a positive integer");
  return v;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// "VmHWM" or "VmRSS" from /proc/self/status, in kB (-1 when unreadable).
long status_kb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(key);
  while (std::getline(in, line)) {
    if (line.compare(0, n, key) == 0 && line.size() > n && line[n] == ':') {
      return std::strtol(line.c_str() + n + 1, nullptr, 10);
    }
  }
  return -1;
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

long long env_number(const char* name, long long fallback) {
  const char* v = std::getenv(name);
  return v && *v ? number(v, name) : fallback;
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += (ch == '\n' || ch == '\t' ? ' ' : ch);
  }
  return out + "\"";
}

proto::ExecOptions argv_options(std::vector<std::string> argv) {
  proto::ExecOptions o;
  o.argv = std::move(argv);
  // stdin stays at its default (open), as the JS SDK asks for every exec;
  // Client::run then sends the EOF frame, the SDK's execFile does not.
  return o;
}

proto::ExecOptions true_options() {
  std::vector<std::string> argv;
  argv.push_back("true");
  return argv_options(std::move(argv));
}

// The JSON line every benchmark ends with: its own fields, then memory and CPU.
std::string finish(const std::string& fields) {
  std::ostringstream out;
  out << "{\"client\":\"cpp\"," << fields << ",\"vmhwm_kb\":" << status_kb("VmHWM")
      << ",\"vmrss_kb\":" << status_kb("VmRSS") << ",\"cpu_s\":" << cpu_seconds() << "}";
  return out.str();
}

struct State {
  std::string result;  // the JSON line
};

asio::awaitable<void> run_true(client::Client* c, std::string sprite) {
  auto r = co_await c->run(sprite, true_options());
  if (r.exit_code != 0) {
    throw std::runtime_error("true exited " + std::to_string(r.exit_code) + ": " + r.stderr_data);
  }
}

asio::awaitable<void> warm_up(client::Client* c, std::string sprite) {
  const char* env = std::getenv("WARMUP");
  long n = env && *env ? std::strtol(env, nullptr, 10) : 20;  // 0 allowed
  for (long i = 0; i < n; ++i) co_await run_true(c, sprite);
}

asio::awaitable<void> bench_create(client::Client* c, std::string sprite, State* state) {
  proto::CreateSpriteRequest request;
  request.name = sprite;
  auto start = Clock::now();
  co_await c->create_sprite(request);
  double created = seconds_since(start);
  co_await run_true(c, sprite);
  std::ostringstream f;
  f << "\"bench\":\"create\",\"sprite\":\"" << sprite << "\",\"create_s\":" << created
    << ",\"first_exec_s\":" << seconds_since(start) - created;
  state->result = finish(f.str());
}

asio::awaitable<void> bench_seq(client::Client* c, std::string sprite, long long n, State* state) {
  co_await warm_up(c, sprite);
  auto start = Clock::now();
  for (long long i = 0; i < n; ++i) co_await run_true(c, sprite);
  double s = seconds_since(start);
  std::ostringstream f;
  f << "\"bench\":\"seq\",\"n\":" << n << ",\"seconds\":" << s << ",\"execs_per_s\":" << n / s;
  state->result = finish(f.str());
}

struct Pool {
  long long next = 0, n = 0, done = 0;
  int workers_left = 0;
  std::exception_ptr failure;
  std::unique_ptr<asio::steady_timer> all_done;
};

// One of K workers: takes the next exec number until there are none left.
asio::awaitable<void> par_worker(client::Client* c, std::string sprite, std::shared_ptr<Pool> pool) {
  try {
    while (!pool->failure && pool->next < pool->n) {
      ++pool->next;
      co_await run_true(c, sprite);
      ++pool->done;
    }
  } catch (...) {
    if (!pool->failure) pool->failure = std::current_exception();
  }
  if (--pool->workers_left == 0) pool->all_done->cancel();
}

void on_worker_end(std::exception_ptr) {}  // workers catch their own failures

asio::awaitable<void> wait_cancelled(asio::steady_timer* timer) {
  boost::system::error_code ec;
  co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

asio::awaitable<void> bench_par(client::Client* c, std::string sprite, long long n, long long k,
                                State* state) {
  co_await warm_up(c, sprite);
  auto executor = co_await asio::this_coro::executor;
  auto pool = std::make_shared<Pool>();
  pool->n = n;
  pool->workers_left = static_cast<int>(k);
  pool->all_done = std::make_unique<asio::steady_timer>(executor, Clock::time_point::max());
  auto start = Clock::now();
  for (long long i = 0; i < k; ++i) {
    asio::co_spawn(executor, par_worker(c, sprite, pool), on_worker_end);
  }
  co_await wait_cancelled(pool->all_done.get());
  double s = seconds_since(start);
  if (pool->failure) std::rethrow_exception(pool->failure);
  std::ostringstream f;
  f << "\"bench\":\"par\",\"n\":" << n << ",\"in_flight\":" << k << ",\"seconds\":" << s
    << ",\"execs_per_s\":" << pool->done / s;
  state->result = finish(f.str());
}

asio::awaitable<void> bench_stream(client::Client* c, std::string sprite, long long bytes,
                                   State* state) {
  std::vector<std::string> argv;
  argv.push_back("head");
  argv.push_back("-c");
  argv.push_back(std::to_string(bytes));
  argv.push_back("/dev/zero");
  auto start = Clock::now();
  auto process = co_await c->exec(sprite, argv_options(std::move(argv)));
  long long got = 0, messages = 0;
  int code = -1;
  for (;;) {
    auto event = co_await process->next();
    if (event.type == client::ExecEvent::Type::exit) {
      code = event.exit_code;
      break;
    }
    if (event.type == client::ExecEvent::Type::output &&
        event.stream == proto::StreamId::stdout_data) {
      got += static_cast<long long>(event.data.size());
      ++messages;
    }
  }
  double s = seconds_since(start);
  if (code != 0 || got != bytes) {
    throw std::runtime_error("stream: exit " + std::to_string(code) + ", " + std::to_string(got) +
                             " of " + std::to_string(bytes) + " bytes");
  }
  std::ostringstream f;
  f << "\"bench\":\"stream\",\"bytes\":" << bytes << ",\"messages\":" << messages
    << ",\"seconds\":" << s << ",\"gb_per_s\":" << bytes / s / 1e9;
  state->result = finish(f.str());
}

struct Sessions {
  std::vector<std::unique_ptr<client::ExecProcess>> open;
  long long next = 0, n = 0, opened = 0, exited = 0, sleep_s = 120;
  int workers_left = 0;
  long long timed_out = 0;
  std::size_t kill_next = 0;
  std::vector<char> killed;
  std::exception_ptr failure;
  std::string first_error, kill_error;
  std::unique_ptr<asio::steady_timer> all_done, deadline;
};

asio::awaitable<void> open_worker(client::Client* c, std::string sprite,
                                  std::shared_ptr<Sessions> s) {
  try {
    while (!s->failure && s->next < s->n) {
      auto i = s->next++;
      std::vector<std::string> argv;
      argv.push_back("sleep");
      argv.push_back(std::to_string(s->sleep_s));
      s->open[static_cast<std::size_t>(i)] = co_await c->exec(sprite, argv_options(std::move(argv)));
      ++s->opened;
    }
  } catch (const std::exception& e) {
    if (!s->failure) {
      s->failure = std::current_exception();
      s->first_error = e.what();
    }
  }
  if (--s->workers_left == 0) s->all_done->cancel();
}

// One of the kill workers: kills the next open session and reads it to its
// exit, until none is left.
asio::awaitable<void> kill_worker(std::shared_ptr<Sessions> s) {
  while (s->kill_next < s->open.size()) {
    std::size_t i = s->kill_next++;
    client::ExecProcess* p = s->open[i].get();
    if (!p) continue;
    try {
      co_await p->signal("KILL");
      for (;;) {
        auto event = co_await p->next();
        if (event.type == client::ExecEvent::Type::exit) break;
      }
      ++s->exited;
    } catch (const std::exception& e) {
      if (s->kill_error.empty()) s->kill_error = e.what();
    }
    s->killed[i] = 1;
  }
  if (--s->workers_left == 0) s->all_done->cancel();
}

// After `limit`, drops the connections of the sessions not yet ended (their
// reads fail, so every kill worker ends).
asio::awaitable<void> kill_deadline(std::shared_ptr<Sessions> s) {
  co_await wait_cancelled(s->deadline.get());
  if (s->workers_left == 0) co_return;  // all ended first (cancelled)
  for (std::size_t i = 0; i < s->open.size(); ++i) {
    if (s->open[i] && !s->killed[i]) {
      ++s->timed_out;
      s->open[i]->abort();
    }
  }
}

asio::awaitable<void> bench_sessions(client::Client* c, std::string sprite, long long n,
                                     long long k, State* state) {
  auto executor = co_await asio::this_coro::executor;
  long base_rss = status_kb("VmRSS");
  auto s = std::make_shared<Sessions>();
  s->n = n;
  s->open.resize(static_cast<std::size_t>(n));
  s->killed.resize(static_cast<std::size_t>(n));
  s->sleep_s = env_number("SESSION_SLEEP", 120);
  const auto kill_limit = std::chrono::seconds(env_number("KILL_TIMEOUT", 30));
  s->workers_left = static_cast<int>(k);
  s->all_done = std::make_unique<asio::steady_timer>(executor, Clock::time_point::max());
  auto start = Clock::now();
  for (long long i = 0; i < k; ++i) asio::co_spawn(executor, open_worker(c, sprite, s), on_worker_end);
  co_await wait_cancelled(s->all_done.get());
  double open_s = seconds_since(start);
  // Everything open: let any late buffers settle, then measure.
  asio::steady_timer pause(executor, std::chrono::milliseconds(500));
  co_await pause.async_wait(asio::use_awaitable);
  long open_rss = status_kb("VmRSS");
  long open_hwm = status_kb("VmHWM");
  std::string open_error = s->first_error;

  // Kill the sessions, K at a time, each read to its exit. (All 1,000 at
  // once loses signals in the engine: see bench/README.md.)
  const long long kill_k = env_number("KILL_AT_ONCE", k);
  auto kill_start = Clock::now();
  s->all_done->expires_at(Clock::time_point::max());
  s->workers_left = static_cast<int>(kill_k);
  for (long long i = 0; i < kill_k; ++i) asio::co_spawn(executor, kill_worker(s), on_worker_end);
  s->deadline = std::make_unique<asio::steady_timer>(executor, kill_limit);
  asio::co_spawn(executor, kill_deadline(s), on_worker_end);
  co_await wait_cancelled(s->all_done.get());
  s->deadline->cancel();
  double kill_s = seconds_since(kill_start);
  s->open.clear();

  std::ostringstream f;
  f << "\"bench\":\"sessions\",\"n\":" << n << ",\"opening_at_once\":" << k
    << ",\"opened\":" << s->opened << ",\"open_s\":" << open_s
    << ",\"rss_before_kb\":" << base_rss << ",\"rss_open_kb\":" << open_rss
    << ",\"hwm_open_kb\":" << open_hwm << ",\"killing_at_once\":" << kill_k << ",\"killed\":" << s->exited << ",\"kill_s\":" << kill_s
    << ",\"kill_timed_out\":" << s->timed_out;
  if (!open_error.empty()) f << ",\"error\":" << json_string(open_error);
  if (!s->kill_error.empty()) f << ",\"kill_error\":" << json_string(s->kill_error);
  state->result = finish(f.str());
}

}  // namespace

int main(int argc, char** argv) {
  auto config = client::config_from_environment();
  Args args;
  const char* sprite_env = std::getenv("BENCH_SPRITE");
  args.sprite = sprite_env && *sprite_env ? sprite_env : "bench";
  int i = 1;
  for (; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--url") config.api_url = value();
    else if (a == "--token") config.token = value();
    else if (a == "--sprite") args.sprite = value();
    else break;
  }
  if (i >= argc) usage("no command");
  args.command = argv[i++];
  for (; i < argc; ++i) args.rest.push_back(argv[i]);
  if (config.api_url.empty()) usage("no URL (--url or SPRITES_API_URL)");
  // Many WebSockets at once are their own connections; the pool bounds only REST.
  config.max_connections = 256;

  asio::io_context io(1);
  client::Client c(io.get_executor(), config);
  State state;
  std::exception_ptr failure;
  auto arg = [&](std::size_t n, const char* what) {
    if (args.rest.size() <= n) usage(args.command + ": missing " + what);
    return number(args.rest[n], what);
  };
  asio::awaitable<void> task;
  if (args.command == "create") {
    task = bench_create(&c, args.sprite, &state);
  } else if (args.command == "seq") {
    task = bench_seq(&c, args.sprite, arg(0, "N"), &state);
  } else if (args.command == "par") {
    task = bench_par(&c, args.sprite, arg(0, "N"), arg(1, "K"), &state);
  } else if (args.command == "stream") {
    task = bench_stream(&c, args.sprite, arg(0, "BYTES"), &state);
  } else if (args.command == "sessions") {
    long long k = args.rest.size() > 1 ? arg(1, "K") : 64;
    task = bench_sessions(&c, args.sprite, arg(0, "N"), k, &state);
  } else {
    usage("unknown command '" + args.command + "'");
  }
  asio::co_spawn(io, std::move(task), [&failure](std::exception_ptr e) { failure = e; });
  io.run();
  if (failure) {
    try {
      std::rethrow_exception(failure);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "client_bench %s: %s\n", args.command.c_str(), e.what());
    }
    return 1;
  }
  std::printf("%s\n", state.result.c_str());
  return 0;
}
