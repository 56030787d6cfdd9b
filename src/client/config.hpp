// Where the client talks and how: base URL, token, TLS and proxy settings,
// timeouts, retries, tracing. config_from_environment() reads them the way
// the Sprites tools do (spec §1.8); with neither a URL nor a token the host
// points the client at the local engine instead (it auto-starts it).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

namespace spritescript::client {

using Millis = std::chrono::milliseconds;

inline constexpr const char* kDefaultApiUrl = "https://api.sprites.dev";

// Bounded defaults for every kind of call; each call may override its own.
struct Timeouts {
  Millis connect{10'000};
  Millis request{30'000};      // plain REST calls
  Millis create{120'000};      // create (wait_for_capacity can be slow), as the JS SDK
  Millis lifecycle{60'000};    // upgrade, restart
  Millis exec_start{60'000};   // until the process runs (waking a cold sprite included)
  Millis checkpoint{600'000};  // checkpoint and restore streams
  Millis files{600'000};       // whole-file reads and writes (the transfer, not just the head)
};

// Idempotent requests retry on connection failures, 429 and 502/503/504,
// with jittered exponential backoff; Retry-After is honoured up to a cap.
struct RetryPolicy {
  int max_attempts = 4;  // 1 = no retries
  Millis base_delay{200};
  Millis max_delay{5'000};
  Millis max_retry_after{60'000};  // a longer Retry-After fails instead of sleeping
};

struct Config {
  std::string api_url;       // "" with no token: the local engine
  std::string token;         // never printed
  std::string token_source;  // where it came from ("SPRITE_TOKEN", ...); "" for none
  std::string ca_file;
  bool insecure = false;
  std::string proxy;  // from HTTPS_PROXY unless NO_PROXY covers the host
  std::string user_agent;
  bool trace = false;  // SPRITESCRIPT_TRACE: requests, statuses, timings on stderr
  Timeouts timeouts;
  RetryPolicy retry;
  std::size_t max_connections = 64;

  bool wants_local_engine() const { return api_url.empty() && token.empty(); }
};

// Reads the environment: SPRITES_API_URL (or SPRITE_URL), SPRITE_TOKEN or
// SPRITES_TOKEN, SPRITES_CA_FILE, SPRITES_INSECURE=1, HTTPS_PROXY /
// NO_PROXY (either case), SPRITESCRIPT_TRACE. With no token variable, the
// `sprite` CLI's login ($HOME/.sprites/sprites.json, sprite_cli_login) gives
// the token, and the URL when none is set. A token without a URL means
// https://api.sprites.dev. `env` defaults to the process environment (tests
// pass their own; without HOME in it no file is read).
Config config_from_environment(const std::map<std::string, std::string>* env = nullptr);

// The `sprite` CLI's login, from HOME/.sprites/sprites.json (version "1"):
// {"current_selection": {"url", "org"}, "urls": {URL: {"orgs": {ORG:
// {"token" | "api_token" | "keyring_key"}}}}, "current_user", "users":
// [{"id", "config_path"}]}. The token is the selected organization's (or
// the only one's) under `api_url` ("": the selected URL, else
// https://api.sprites.dev): a token is only ever used with the URL it is
// filed under. A "keyring_key" is looked up in the CLI's file keyring
// (HOME/.sprites/keyring/SERVICE/KEY, ':' written '-'); the system keyring
// is not read. A user's own config (current_user) is tried first. Anything
// missing, unreadable or of another shape gives nullopt: never an error.
struct CliLogin {
  std::string api_url;
  std::string org;
  std::string token;  // never printed
};
std::optional<CliLogin> sprite_cli_login(const std::string& home, const std::string& api_url = {});

// Whether NO_PROXY (comma-separated hosts, ".suffix" or "*") covers `host`.
bool no_proxy_matches(const std::string& no_proxy, const std::string& host);

}  // namespace spritescript::client
