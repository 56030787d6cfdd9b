#include "engine/engine.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/api.hpp"
#include "engine/http_server.hpp"
#include "engine/store.hpp"

namespace fs = std::filesystem;

namespace spritescript::engine {
namespace {

constexpr const char* kEngineVersion = "0.1.0";  // Sprite-Version: release form (spec §1.5)

fs::path default_state_dir() {
  if (const char* xdg = std::getenv("XDG_DATA_HOME"); xdg && *xdg) {
    return fs::path(xdg) / "spritescript" / "engine";
  }
  const char* home = std::getenv("HOME");
  return fs::path(home ? home : ".") / ".local" / "share" / "spritescript" / "engine";
}

// The token clients must send; created once (0600) and kept in the state dir.
std::string load_or_create_token(const fs::path& state_dir) {
  fs::path file = state_dir / "token";
  std::ifstream in(file);
  std::string token;
  if (in && std::getline(in, token) && !token.empty()) return token;
  token = random_hex(32);
  write_file_atomically(file, token + "\n", 0600);
  return token;
}

}  // namespace

int serve(const ServeOptions& options) {
  auto colon = options.listen.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "spritescript serve: --listen wants HOST:PORT, got '%s'\n",
                 options.listen.c_str());
    return 2;
  }
  std::string host = options.listen.substr(0, colon);
  int port = std::atoi(options.listen.c_str() + colon + 1);
  if (port < 0 || port > 65535) {
    std::fprintf(stderr, "spritescript serve: bad port in --listen '%s'\n", options.listen.c_str());
    return 2;
  }
  fs::path state_dir =
      options.state_dir.empty() ? default_state_dir() : fs::path(options.state_dir);
  // A state dir we create is private (0700); an existing one is left as the
  // user made it (never chmod a directory like /tmp given by mistake).
  if (fs::create_directories(state_dir)) {
    fs::permissions(state_dir, fs::perms::owner_all, fs::perm_options::replace);
  }
  std::string token = options.token.empty() ? load_or_create_token(state_dir) : options.token;

  Store store(state_dir);
  boost::asio::io_context io;
  std::unique_ptr<Api> api;
  std::unique_ptr<HttpServer> server;
  try {
    server = std::make_unique<HttpServer>(
        io, host, static_cast<std::uint16_t>(port),
        [&api](const HttpRequest& r) { return api->handle(r); },
        std::vector<std::pair<std::string, std::string>>{{"Sprite-Version", kEngineVersion}});
  } catch (const boost::system::system_error& e) {
    std::fprintf(stderr, "spritescript serve: cannot listen on %s: %s\n", options.listen.c_str(),
                 e.code().message().c_str());
    return 1;
  }
  api = std::make_unique<Api>(store, token, server->port());

  if (host != "127.0.0.1" && host != "::1" && host != "localhost") {
    std::fprintf(stderr,
                 "spritescript serve: warning: listening on %s, not loopback: anyone who can "
                 "reach it and has the token controls these sprites\n",
                 host.c_str());
  }
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&io](const boost::system::error_code&, int) { io.stop(); });
  std::printf("listening on http://%s:%u (state dir %s, %zu sprites)\n", host.c_str(),
              server->port(), state_dir.c_str(), store.size());
  std::fflush(stdout);
  io.run();
  return 0;
}

}  // namespace spritescript::engine
