// spritescript: the command line.
#include <lua.hpp>

#include <boost/version.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "engine/agent.hpp"
#include "engine/engine.hpp"
#include "host/runtime.hpp"

namespace {

constexpr int kExitUsage = 2;

constexpr const char* kUsage = R"(spritescript: automate Sprites with Lua

usage:
  spritescript run FILE|NAME [ARGS...]
                                    run a Lua script: a file, or a script by name
                                    ('spritescript scripts'; NAME --help)
  spritescript FILE.lua [ARGS...]   the same
  spritescript -e CODE [ARGS...]    run CODE
  spritescript serve [--listen HOST:PORT] [--state-dir DIR] [--token TOKEN]
                   [--idle-timeout 30s] [--cold-timeout 10m] [--auto-checkpoints 3]
                   [--sandbox=none] [--resolve NAME=IP[,IP...]]...
                                    run the local engine (docs/engine.md)
  spritescript engine start|status|stop|logs [--state-dir DIR]
                                    the local engine in the background
  spritescript COMMAND [ARGS...]    everyday commands (docs/cli.md):
      ls create destroy use exec console sessions checkpoint restore
      policy proxy url fs services repl scripts trust doctor
      (COMMAND --help says more)
  spritescript version              print the version
  spritescript help                 show this help

options (before the command):
  -v, --verbose                     print tracebacks with errors
  --api-url URL                     the Sprites API (or an engine) to use
  --token TOKEN                     the token to send (see 'spritescript doctor')

Exit codes: 0 ok, 1 script error, 2 usage, 3 syntax error, 124 timeout,
130 interrupted; the full table is in docs/errors.md.
)";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "spritescript: %s (see 'spritescript help')\n", message.c_str());
  return kExitUsage;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

int serve_main(const std::vector<std::string>& args) {
  spritescript::engine::ServeOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    auto value = [&](std::string& out) {
      if (i + 1 >= args.size()) return false;
      out = args[++i];
      return true;
    };
    bool ok = true;
    if (args[i] == "--listen") {
      ok = value(options.listen);
    } else if (args[i] == "--state-dir") {
      ok = value(options.state_dir);
    } else if (args[i] == "--token") {
      ok = value(options.token);
    } else if (args[i] == "--idle-timeout") {
      ok = value(options.idle_timeout);
    } else if (args[i] == "--cold-timeout") {
      ok = value(options.cold_timeout);
    } else if (args[i] == "--auto-checkpoints") {
      std::string count;
      ok = value(count);
      char* end = nullptr;
      long n = ok ? std::strtol(count.c_str(), &end, 10) : -1;
      if (!ok || count.empty() || *end != '\0' || n < 0 || n > 100) {
        return usage_error("serve: --auto-checkpoints wants a count from 0 (none) to 100");
      }
      options.auto_checkpoints = static_cast<int>(n);
    } else if (args[i] == "--resolve") {
      std::string entry;
      ok = value(entry);
      if (ok) options.resolve.push_back(entry);
    } else if (args[i] == "--sandbox=none" || args[i] == "--sandbox=namespaces") {
      options.isolate = args[i] == "--sandbox=namespaces";
    } else if (args[i] == "--sandbox") {
      std::string mode;
      ok = value(mode);
      if (ok && mode != "none" && mode != "namespaces") {
        return usage_error("serve: --sandbox is 'namespaces' (default) or 'none'");
      }
      options.isolate = mode != "none";
    } else {
      return usage_error("serve: unknown option '" + args[i] + "'");
    }
    if (!ok) return usage_error("serve: " + args[i] + " needs a value");
  }
  return spritescript::engine::serve(options);
}

// Internal: the engine starts this as PID 1 of a sprite's sandbox.
int agent_main(const std::vector<std::string>& args) {
  spritescript::engine::AgentOptions options;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--sprite-dir" && i + 1 < args.size()) {
      options.sprite_dir = args[++i];
    } else if (args[i] == "--hostname" && i + 1 < args.size()) {
      options.hostname = args[++i];
    } else if (args[i] == "--sandbox=none") {
      options.isolate = false;
    } else {
      return usage_error("agent: unknown option '" + args[i] + "'");
    }
  }
  if (options.sprite_dir.empty() || options.hostname.empty()) {
    return usage_error("agent is started by 'spritescript serve', not by hand");
  }
  return spritescript::engine::agent_main(options);
}

int engine_main(const std::vector<std::string>& args) {
  if (args.empty() ||
      (args[0] != "start" && args[0] != "status" && args[0] != "stop" && args[0] != "logs")) {
    return usage_error("engine needs 'start', 'status', 'stop' or 'logs'");
  }
  std::string state_dir;
  for (size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--state-dir" && i + 1 < args.size()) {
      state_dir = args[++i];
    } else {
      return usage_error("engine " + args[0] + ": unknown option '" + args[i] + "'");
    }
  }
  return spritescript::engine::engine_command(args[0], state_dir);
}

// The environment variable a global option before the command sets:
// --api-url and --token, also spelled --api-url=URL and --token=T.
const char* global_setting(const std::string& arg) {
  const std::string flag = arg.substr(0, arg.find('='));
  if (flag == "--api-url") return "SPRITES_API_URL";
  if (flag == "--token") return "SPRITE_TOKEN";
  return nullptr;
}

int run_main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  spritescript::host::RunOptions options;
  size_t i = 0;
  for (; i < args.size() && args[i].size() > 1 && args[i][0] == '-' && args[i] != "-e"; ++i) {
    if (args[i] == "-v" || args[i] == "--verbose") {
      options.verbose = true;
    } else if (args[i] == "-h" || args[i] == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (args[i] == "--version") {
      args[i] = "version";
      break;
    } else if (const char* variable = global_setting(args[i])) {
      // --api-url URL / --token T (or --NAME=VALUE): put in the environment
      // the client reads, so they win over it and over the config file for
      // everything this process runs. The SOURCE variable lets `doctor` say
      // where they came from; the token itself is never printed.
      const std::string flag = args[i].substr(0, args[i].find('='));
      std::string value;
      if (auto eq = args[i].find('='); eq != std::string::npos) {
        value = args[i].substr(eq + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      }
      if (value.empty()) return usage_error(flag + " needs a value");
      ::setenv(variable, value.c_str(), 1);
      ::setenv(flag == "--token" ? "SPRITESCRIPT_TOKEN_SOURCE" : "SPRITESCRIPT_API_URL_SOURCE",
               flag.c_str(), 1);
    } else {
      return usage_error("unknown option '" + args[i] + "'");
    }
  }
  if (i == args.size()) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }

  const std::string& command = args[i];
  auto rest = [&](size_t from) {
    return std::vector<std::string>(args.begin() + static_cast<std::ptrdiff_t>(from), args.end());
  };
  if (command == "version") {
    std::printf("spritescript %s (%s, Boost %d.%d)\n", SPRITESCRIPT_VERSION, LUAJIT_VERSION,
                BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000);
    return 0;
  }
  if (command == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "serve") return serve_main(rest(i + 1));
  if (command == "engine") return engine_main(rest(i + 1));
  if (command == "agent") return agent_main(rest(i + 1));
  if (command == "-e") {
    if (i + 1 >= args.size()) return usage_error("-e needs a piece of Lua code");
    options.code = args[i + 1];
    options.args = rest(i + 2);
  } else if (command == "run") {
    std::size_t script = i + 1;
    for (; script < args.size() && args[script] == "--trust"; ++script) options.trust = true;
    if (script >= args.size())
      return usage_error("run needs a script (a file, or a name from 'spritescript scripts')");
    options.file = args[script];
    options.args = rest(script + 1);
  } else if (ends_with(command, ".lua") || command.find('/') != std::string::npos) {
    options.file = command;
    options.args = rest(i + 1);
  } else {
    // Everything else is a built-in command written in Lua (lua/stdlib/
    // spritescript/cli): ls, create, exec, console, repl... It says what
    // an unknown command is closest to.
    options.module = "spritescript.cli";
    options.args = rest(i);
  }

  spritescript::host::Runtime runtime;
  return runtime.run(options);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "spritescript: %s\n", e.what());
    return 70;
  }
}
