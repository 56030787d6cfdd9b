// The async C++ client's filesystem (spec §10) and services (§11) calls
// against a real local engine: round trips of text, binary and a 20 MiB
// file read piece by piece, list/stat (a directory is itself, an empty one
// exists), remove/rename/copy/chmod/chown, typed errors with the errno
// code, a 256 MiB upload streamed from a local file with flat memory, and
// a service's whole life (events, state, stop/start, logs, signal,
// delete). Timeouts are hang guards only.
#include <catch2/catch.hpp>

#include <boost/asio.hpp>

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/client.hpp"
#include "client_support.hpp"
#include "engine.hpp"
#include "process.hpp"

namespace {

namespace asio = boost::asio;
using namespace spritescript;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using client::ErrorKind;
using e2e::run;

constexpr const char* kSprite = "box";

// The client::Error `work` throws (fails when it throws none).
template <class T>
client::Error error_of(asio::io_context& io, asio::awaitable<T> work) {
  try {
    run(io, std::move(work));
  } catch (const client::Error& e) {
    return e;
  }
  FAIL("the call succeeded; an error was expected");
  return client::Error(ErrorKind::api, "unreachable");
}

struct Fixture {
  e2e::TempDir state;
  e2e::Engine engine{state};
  asio::io_context io;
  client::Client api{io.get_executor(), e2e::client_config(engine.port())};

  Fixture() {
    proto::CreateSpriteRequest request;
    request.name = kSprite;
    run(io, api.create_sprite(request));
  }
  client::ExecResult sh(const std::string& script) {
    proto::ExecOptions options;
    options.argv = {"sh", "-c", script};
    return run(io, api.run(kSprite, options));
  }
  // The engine still answers after a refusal.
  void check_serving() { CHECK(run(io, api.get_sprite(kSprite)).name == kSprite); }
};

// `dir` is a literal: the options view it.
client::FsOptions in_dir(const char* dir) {
  client::FsOptions options;
  options.working_dir = dir;
  return options;
}

std::string binary_bytes(std::size_t size, unsigned seed) {
  std::string out(size, '\0');
  std::minstd_rand rng(seed);
  for (auto& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

struct Streamed {
  std::uint64_t bytes = 0;
  std::size_t pieces = 0;
  std::size_t largest = 0;
  bool same = true;
};

// Reads the file piece by piece, comparing each with `expected` as it comes.
asio::awaitable<Streamed> stream_file(client::Client& api, const std::string& path,
                                      const std::string& expected) {
  const std::string sprite = kSprite;
  // Default options inside a coroutine (trivially copyable: GCC 12 safe).
  auto reader = co_await api.open_file(sprite, path);
  Streamed s;
  while (auto piece = co_await reader->next()) {
    s.same = s.same && s.bytes + piece->size() <= expected.size() &&
             expected.compare(s.bytes, piece->size(), *piece) == 0;
    s.bytes += piece->size();
    s.largest = std::max(s.largest, piece->size());
    ++s.pieces;
  }
  s.same = s.same && s.bytes == reader->bytes_read();
  co_return s;
}

// Reads `from` piece by piece and writes the bytes to `to`, all inside a
// coroutine with the calls' default arguments.
asio::awaitable<proto::FsWritten> copy_through(client::Client& api, const std::string& from,
                                               const std::string& to) {
  const std::string sprite = kSprite;
  auto reader = co_await api.open_file(sprite, from);
  std::string all;
  while (auto piece = co_await reader->next()) all += *piece;
  co_return co_await api.write_file(sprite, to, std::move(all));
}

// Every event of a stream, to its end.
asio::awaitable<std::vector<proto::ProgressEvent>> events_of(
    asio::awaitable<std::unique_ptr<client::EventStream>> open) {
  auto stream = co_await std::move(open);
  std::vector<proto::ProgressEvent> out;
  while (auto event = co_await stream->next()) out.push_back(std::move(*event));
  co_return out;
}

// This process's peak resident memory (VmHWM), in bytes; 0 if unknown.
std::uint64_t peak_rss() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

// Starts the peak over from the current size (Linux >= 4.0), so that what
// earlier tests in this process allocated does not hide a new peak.
void reset_peak_rss() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

// Writes `size` bytes of varied content (every 4 KiB block stamped with its
// offset, so a reordered or repeated piece shows) to `path`, 1 MiB at a
// time; returns their SHA-256 in hex.
std::string write_varied_file(const std::string& path, std::size_t size) {
  const std::size_t piece_size = std::size_t{1} << 20;
  std::string piece = binary_bytes(piece_size, 11);
  std::ofstream out(path, std::ios::binary);
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr);
  for (std::size_t offset = 0; offset < size; offset += piece_size) {
    for (std::size_t block = 0; block < piece_size; block += 4096) {
      std::uint64_t at = offset + block;
      std::memcpy(piece.data() + block, &at, sizeof at);
    }
    const std::size_t n = std::min(piece_size, size - offset);
    out.write(piece.data(), static_cast<std::streamsize>(n));
    EVP_DigestUpdate(md.get(), piece.data(), n);
  }
  out.close();
  REQUIRE(out.good());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  EVP_DigestFinal_ex(md.get(), digest, &digest_size);
  std::string hex;
  for (unsigned i = 0; i < digest_size; ++i) {
    hex += "0123456789abcdef"[digest[i] >> 4];
    hex += "0123456789abcdef"[digest[i] & 15];
  }
  return hex;
}

std::vector<std::string> types_of(const std::vector<proto::ProgressEvent>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.type);
  return out;
}

bool has(const std::vector<std::string>& items, const std::string& item) {
  return std::find(items.begin(), items.end(), item) != items.end();
}

std::string output_of(const std::vector<proto::ProgressEvent>& events) {
  std::string out;
  for (const auto& e : events) {
    if (e.type == "stdout" || e.type == "stderr") out += e.message;
  }
  return out;
}

}  // namespace

TEST_CASE("client fs: write and read round trips of text and binary and a 20 MiB streamed read",
          "[client][fs]") {
  Fixture f;
  auto written = run(f.io, f.api.write_file(kSprite, "/home/sprite/hello.txt", "hello\n"));
  CHECK(written.path == "/home/sprite/hello.txt");
  CHECK(written.size == 6);
  CHECK(written.mode == 0644);
  CHECK(run(f.io, f.api.read_file(kSprite, "/home/sprite/hello.txt")) == "hello\n");
  CHECK(run(f.io, f.api.read_file(kSprite, "hello.txt", in_dir("/home/sprite"))) == "hello\n");
  CHECK(f.sh("cat /home/sprite/hello.txt").stdout_data == "hello\n");

  // Every byte value, NULs included; relative to workingDir, parents made.
  std::string all_bytes;
  for (int round = 0; round < 4; ++round) {
    for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  }
  written = run(f.io, f.api.write_file(kSprite, "deep/er/bin.dat", all_bytes, 0600, true,
                                       in_dir("/home/sprite")));
  CHECK(written.path == "/home/sprite/deep/er/bin.dat");
  CHECK(written.size == 1024);
  CHECK(written.mode == 0600);
  CHECK(run(f.io, f.api.read_file(kSprite, "/home/sprite/deep/er/bin.dat")) == all_bytes);

  // An empty file, and a rewrite that keeps the mode.
  run(f.io, f.api.write_file(kSprite, "/home/sprite/empty", ""));
  CHECK(run(f.io, f.api.read_file(kSprite, "/home/sprite/empty")).empty());
  written = run(f.io, f.api.write_file(kSprite, "/home/sprite/deep/er/bin.dat", "x"));
  CHECK(written.mode == 0600);

  // Without parents: not made.
  auto e = error_of(
      f.io, f.api.write_file(kSprite, "/home/sprite/no/such/dir/x", "x", std::nullopt, false));
  CHECK(e.kind() == ErrorKind::not_found);
  CHECK(e.code() == "ENOENT");

  // 20 MiB: written whole, read back piece by piece.
  const std::string big = binary_bytes(20u << 20, 7);
  written = run(f.io, f.api.write_file(kSprite, "/tmp/big.bin", big));
  CHECK(written.size == static_cast<std::int64_t>(big.size()));
  Streamed s = run(f.io, stream_file(f.api, "/tmp/big.bin", big));
  CHECK(s.same);
  CHECK(s.bytes == big.size());
  CHECK(s.pieces >= 5);  // the engine sends 4 MiB chunks: never the whole file
  CHECK(s.largest <= (std::size_t{4} << 20));
  CHECK(run(f.io, f.api.read_file(kSprite, "/tmp/big.bin")) == big);
  written = run(f.io, copy_through(f.api, "/tmp/big.bin", "/tmp/big2.bin"));
  CHECK(written.size == static_cast<std::int64_t>(big.size()));
  CHECK(run(f.io, f.api.read_file(kSprite, "/tmp/big2.bin")) == big);
  // A reader dropped half way leaves the client usable.
  {
    auto reader = run(f.io, f.api.open_file(kSprite, "/tmp/big.bin"));
    auto first = run(f.io, reader->next());
    REQUIRE(first);
    CHECK(big.compare(0, first->size(), *first) == 0);
  }
  CHECK(run(f.io, f.api.read_file(kSprite, "/home/sprite/hello.txt")) == "hello\n");
}

TEST_CASE("client fs: a 256 MiB upload from a local file is streamed with flat memory",
          "[client][fs][upload]") {
  Fixture f;
  e2e::TempDir local;
  const std::string big_path = (local.path() / "big.bin").string();
  const std::size_t size = std::size_t{256} << 20;
  const std::string sha = write_varied_file(big_path, size);

  reset_peak_rss();
  const std::uint64_t before = peak_rss();
  auto written = run(f.io, f.api.write_file_from(kSprite, "/tmp/up/big.bin", big_path, 0640));
  const std::uint64_t after = peak_rss();
  CHECK(written.path == "/tmp/up/big.bin");
  CHECK(written.size == static_cast<std::int64_t>(size));
  CHECK(written.mode == 0640);
  INFO("peak RSS before " << before / 1024 << " KiB, after " << after / 1024 << " KiB");
  REQUIRE(before > 0);
  CHECK(after - before < (std::uint64_t{32} << 20));  // far less than the file

  // Byte for byte: the size and the hash inside the sprite.
  CHECK(run(f.io, f.api.stat(kSprite, "/tmp/up/big.bin")).size == static_cast<std::int64_t>(size));
  CHECK(f.sh("sha256sum /tmp/up/big.bin").stdout_data == sha + "  /tmp/up/big.bin\n");

  // Small and empty files; a rewrite keeps the mode; relative paths.
  const std::string small_path = local.write("small.txt", "small\n").string();
  written = run(f.io, f.api.write_file_from(kSprite, "up/big.bin", small_path, std::nullopt, true,
                                            in_dir("/tmp")));
  CHECK(written.path == "/tmp/up/big.bin");
  CHECK(written.mode == 0640);
  CHECK(run(f.io, f.api.read_file(kSprite, "/tmp/up/big.bin")) == "small\n");
  const std::string empty_path = local.write("empty", "").string();
  CHECK(run(f.io, f.api.write_file_from(kSprite, "/tmp/up/empty", empty_path)).size == 0);

  // Local refusals come before any request, typed.
  auto e = error_of(f.io, f.api.write_file_from(kSprite, "/tmp/x", big_path + ".missing"));
  CHECK(e.kind() == ErrorKind::not_found);
  CHECK(e.code() == "ENOENT");
  CHECK_THAT(e.what(), Contains("big.bin.missing"));
  e = error_of(f.io, f.api.write_file_from(kSprite, "/tmp/x", local.path().string()));
  CHECK(e.kind() == ErrorKind::usage);
  CHECK(e.code() == "EISDIR");

  // The server refuses a streamed body (no parent, not made): its answer,
  // not a broken pipe, even when it did not take the body. Then the pool
  // still works.
  const std::string mid_path = local.write("mid.bin", binary_bytes(3u << 20, 5)).string();
  e = error_of(f.io,
               f.api.write_file_from(kSprite, "/tmp/no/such/dir/x", mid_path, std::nullopt, false));
  CHECK(e.kind() == ErrorKind::not_found);
  CHECK(e.code() == "ENOENT");
  f.check_serving();
  CHECK(run(f.io, f.api.write_file_from(kSprite, "/tmp/up/mid.bin", mid_path)).size == (3 << 20));
  CHECK(run(f.io, f.api.read_file(kSprite, "/tmp/up/mid.bin")) == binary_bytes(3u << 20, 5));
}

TEST_CASE("client fs: list and stat of files and directories incl. an empty one and a symlink",
          "[client][fs]") {
  Fixture f;
  run(f.io, f.api.write_file(kSprite, "/home/sprite/app/main.go", "package main\n"));
  run(f.io, f.api.write_file(kSprite, "/home/sprite/app/lib/util.go", "package lib\n", 0600));
  f.sh("mkdir -p /home/sprite/app/empty && ln -s lib /home/sprite/app/link");

  auto entries = run(f.io, f.api.list_dir(kSprite, "/home/sprite/app"));
  std::vector<std::string> names;
  for (const auto& entry : entries) names.push_back(entry.name);
  CHECK(names == std::vector<std::string>{"empty", "lib", "link", "main.go"});
  const auto& main_go = entries[3];
  CHECK(main_go.path == "/home/sprite/app/main.go");
  CHECK(main_go.type == "file");
  CHECK(main_go.size == 13);
  CHECK(main_go.mode == 0644);
  CHECK_FALSE(main_go.is_dir);
  CHECK_FALSE(main_go.mod_time.empty());
  CHECK(entries[1].is_dir);
  CHECK(entries[1].type == "directory");
  CHECK(entries[2].type == "symlink");

  auto all = run(f.io, f.api.list_dir(kSprite, "app", true, in_dir("/home/sprite")));
  CHECK(all.size() == 5);  // empty, lib, lib/util.go, link, main.go
  auto one = run(f.io, f.api.list_dir(kSprite, "/home/sprite/app/main.go"));
  REQUIRE(one.size() == 1);
  CHECK(one[0].name == "main.go");
  CHECK(run(f.io, f.api.list_dir(kSprite, "/home/sprite/app/empty")).empty());

  auto file = run(f.io, f.api.stat(kSprite, "/home/sprite/app/lib/util.go"));
  CHECK(file.type == "file");
  CHECK(file.mode == 0600);
  CHECK(file.size == 12);
  // A directory is itself, not its first child (the SDKs' quirk) ...
  auto dir = run(f.io, f.api.stat(kSprite, "app/lib", in_dir("/home/sprite")));
  CHECK(dir.path == "/home/sprite/app/lib");
  CHECK(dir.name == "lib");
  CHECK(dir.is_dir);
  CHECK(dir.mode == 0755);
  // ... an empty directory exists, with . and .. and trailing slashes
  // cleaned as the server does.
  auto empty = run(f.io, f.api.stat(kSprite, "/home/sprite/app/./lib/../empty/"));
  CHECK(empty.path == "/home/sprite/app/empty");
  CHECK(empty.is_dir);
  // ... a symlink is the link itself (lstat).
  CHECK(run(f.io, f.api.stat(kSprite, "/home/sprite/app/link")).type == "symlink");
  auto root = run(f.io, f.api.stat(kSprite, "/"));
  CHECK(root.is_dir);
  CHECK(root.path == "/");
  CHECK(run(f.io, f.api.stat(kSprite, "/home")).is_dir);

  auto missing = error_of(f.io, f.api.stat(kSprite, "/home/sprite/app/nothing"));
  CHECK(missing.kind() == ErrorKind::not_found);
  CHECK(missing.code() == "ENOENT");
  CHECK(error_of(f.io, f.api.stat(kSprite, "/no/such/dir/x")).kind() == ErrorKind::not_found);
  CHECK(error_of(f.io, f.api.list_dir(kSprite, "/home/sprite/nothing")).kind() ==
        ErrorKind::not_found);
  CHECK(client::absolute_fs_path("a/../b/", "/home/sprite") == "/home/sprite/b");
  CHECK(client::absolute_fs_path("../../..", "/home") == "/");
  CHECK(client::absolute_fs_path("/x//y/.", "/ignored") == "/x/y");
}

TEST_CASE("client fs: remove, rename, copy, chmod and chown", "[client][fs]") {
  Fixture f;
  run(f.io, f.api.write_file(kSprite, "/home/sprite/src/one.txt", "12345"));
  run(f.io, f.api.write_file(kSprite, "/home/sprite/src/deep/two.txt", "abc", 0700));

  auto moved = run(f.io, f.api.rename(kSprite, "src/one.txt", "moved.txt", in_dir("/home/sprite")));
  CHECK(moved.source == "/home/sprite/src/one.txt");
  CHECK(moved.dest == "/home/sprite/moved.txt");
  CHECK(run(f.io, f.api.read_file(kSprite, "/home/sprite/moved.txt")) == "12345");
  CHECK(error_of(f.io, f.api.read_file(kSprite, "/home/sprite/src/one.txt")).kind() ==
        ErrorKind::not_found);

  auto copied = run(f.io, f.api.copy(kSprite, "/home/sprite/src", "/home/sprite/copy", true));
  CHECK(copied.copied.size() == 3);  // copy, copy/deep, copy/deep/two.txt
  CHECK(copied.total_bytes == 3);
  CHECK(run(f.io, f.api.read_file(kSprite, "/home/sprite/copy/deep/two.txt")) == "abc");
  CHECK(run(f.io, f.api.stat(kSprite, "/home/sprite/copy/deep/two.txt")).mode == 0700);
  // Into an existing directory: inside it, as cp does.
  copied = run(f.io, f.api.copy(kSprite, "/home/sprite/moved.txt", "/home/sprite/copy"));
  CHECK(copied.total_bytes == 5);
  CHECK(run(f.io, f.api.read_file(kSprite, "/home/sprite/copy/moved.txt")) == "12345");

  auto changed = run(f.io, f.api.chmod(kSprite, "/home/sprite/copy", 0750, true));
  CHECK(changed.size() == 4);
  REQUIRE_FALSE(changed.empty());
  CHECK(changed[0].path == "/home/sprite/copy");
  CHECK(changed[0].mode == 0750u);
  CHECK(run(f.io, f.api.stat(kSprite, "/home/sprite/copy/deep/two.txt")).mode == 0750);
  CHECK(f.sh("stat -c %a /home/sprite/copy/moved.txt").stdout_data == "750\n");

  auto owned = run(f.io, f.api.chown(kSprite, "/home/sprite/copy", "0", "0", true));
  CHECK(owned.size() == 4);
  owned = run(
      f.io, f.api.chown(kSprite, "copy/moved.txt", "root", "root", false, in_dir("/home/sprite")));
  REQUIRE(owned.size() == 1);
  CHECK(owned[0].uid == 0);
  CHECK(owned[0].gid == 0);
  CHECK(error_of(f.io, f.api.chown(kSprite, "/home/sprite/copy", "", "")).kind() ==
        ErrorKind::usage);
  CHECK(error_of(f.io, f.api.chown(kSprite, "/home/sprite/copy", "no-such-user-here", "")).kind() ==
        ErrorKind::usage);

  auto deleted = run(f.io, f.api.remove(kSprite, "/home/sprite/moved.txt"));
  CHECK(deleted == std::vector<std::string>{"/home/sprite/moved.txt"});
  deleted = run(f.io, f.api.remove(kSprite, "copy", true, in_dir("/home/sprite")));
  REQUIRE(deleted.size() == 4);
  CHECK(deleted.front() == "/home/sprite/copy");  // parents first
  CHECK(error_of(f.io, f.api.stat(kSprite, "/home/sprite/copy")).kind() == ErrorKind::not_found);
  CHECK(f.sh("ls /home/sprite").stdout_data == "src\n");
}

TEST_CASE("client fs: refusals are typed errors with the errno code and the engine keeps serving",
          "[client][fs][errors]") {
  Fixture f;
  run(f.io, f.api.write_file(kSprite, "/home/sprite/dir/file", "x"));

  auto missing = error_of(f.io, f.api.read_file(kSprite, "/home/sprite/nothing"));
  CHECK(missing.kind() == ErrorKind::not_found);
  CHECK(missing.status() == 404);
  CHECK(missing.code() == "ENOENT");
  CHECK_THAT(std::string(missing.what()), Contains("read /home/sprite/nothing on box") &&
                                              Contains("ENOENT") && Contains("HTTP 404"));
  // The stream variant refuses before its first piece.
  CHECK(error_of(f.io, f.api.open_file(kSprite, "nothing", in_dir("/home/sprite"))).kind() ==
        ErrorKind::not_found);
  f.check_serving();

  auto not_empty = error_of(f.io, f.api.remove(kSprite, "/home/sprite/dir"));
  CHECK(not_empty.kind() == ErrorKind::conflict);
  CHECK(not_empty.code() == "ENOTEMPTY");
  CHECK_THAT(std::string(not_empty.what()), Contains("ENOTEMPTY") && Contains("HTTP 409"));
  f.check_serving();

  auto is_dir = error_of(f.io, f.api.read_file(kSprite, "/home/sprite/dir"));
  CHECK(is_dir.kind() == ErrorKind::usage);
  CHECK(is_dir.code() == "EISDIR");
  CHECK(error_of(f.io, f.api.copy(kSprite, "/home/sprite/dir", "/home/sprite/d2")).code() ==
        "EISDIR");
  CHECK(error_of(f.io, f.api.rename(kSprite, "/home/sprite/nothing", "/home/sprite/x")).kind() ==
        ErrorKind::not_found);
  CHECK(error_of(f.io, f.api.chmod(kSprite, "/home/sprite/nothing", 0644)).kind() ==
        ErrorKind::not_found);
  CHECK(error_of(f.io, f.api.remove(kSprite, "/home/sprite/nothing")).kind() ==
        ErrorKind::not_found);
  // The sprite's / is read-only: a permission inside the sprite, not the token.
  auto denied = error_of(f.io, f.api.write_file(kSprite, "/top-level.txt", "x"));
  CHECK(denied.kind() == ErrorKind::api);
  CHECK(denied.code() == "EACCES");
  CHECK(error_of(f.io, f.api.read_file("no-such-sprite", "/etc/hostname")).kind() ==
        ErrorKind::not_found);

  // EEXIST has no endpoint that answers it here; the body is mapped alike.
  auto exists = client::error_from_response(
      "copy a to b on box", 409,
      R"({"error":"file exists","code":"EEXIST","path":"/home/sprite/b"})", "");
  CHECK(exists.kind() == ErrorKind::conflict);
  CHECK(exists.code() == "EEXIST");
  CHECK(std::string(exists.what()) ==
        "copy a to b on box: file exists: /home/sprite/b (EEXIST, HTTP 409)");
  // Bodies of other endpoints are read as before.
  auto plain =
      client::error_from_response("get x", 404, R"({"error":"not_found","message":"no such"})", "");
  CHECK(plain.code() == "not_found");
  CHECK(std::string(plain.what()) == "get x: no such (HTTP 404)");

  CHECK(run(f.io, f.api.read_file(kSprite, "/home/sprite/dir/file")) == "x");
  CHECK(run(f.io, f.api.list_sprites("")).sprites.size() == 1);
}

TEST_CASE(
    "client services: create with events, list and get state, stop and start, logs, signal "
    "and delete",
    "[client][services]") {
  Fixture f;
  proto::ServiceDefinition def;
  def.cmd = "sh";
  def.args = {"-c", "echo hello $GREETING; exec sleep 1000"};
  def.env = {{"GREETING", "world"}};
  auto created = run(f.io, events_of(f.api.put_service(kSprite, "web", def, 1s)));
  auto types = types_of(created);
  INFO(output_of(created));
  CHECK(has(types, "started"));
  CHECK(types.back() == "complete");
  CHECK(output_of(created) == "hello world\n");
  for (const auto& event : created) CHECK(event.timestamp.value_or(0) > 1'700'000'000'000);

  auto services = run(f.io, f.api.list_services(kSprite));
  REQUIRE(services.size() == 1);
  CHECK(services[0].name == "web");
  REQUIRE(services[0].state);
  CHECK(services[0].state->status == "running");
  CHECK(services[0].state->pid.value_or(0) > 0);
  auto web = run(f.io, f.api.get_service(kSprite, "web"));
  CHECK(web.cmd == "sh");
  CHECK(web.args == def.args);
  CHECK(web.env == def.env);
  CHECK_FALSE(web.http_port);
  CHECK(error_of(f.io, f.api.get_service(kSprite, "nope")).kind() == ErrorKind::not_found);

  auto stopped = types_of(run(f.io, events_of(f.api.stop_service(kSprite, "web", 5s))));
  CHECK(has(stopped, "stopping"));
  CHECK(has(stopped, "stopped"));
  CHECK(run(f.io, f.api.get_service(kSprite, "web")).state->status == "stopped");
  auto again = error_of(f.io, events_of(f.api.stop_service(kSprite, "web")));
  CHECK(again.kind() == ErrorKind::conflict);
  CHECK(error_of(f.io, f.api.signal_service(kSprite, "web", "HUP")).kind() == ErrorKind::conflict);

  auto started = run(f.io, events_of(f.api.start_service(kSprite, "web", 500ms)));
  CHECK(has(types_of(started), "started"));
  CHECK(run(f.io, f.api.get_service(kSprite, "web")).state->status == "running");
  auto restarted = types_of(run(f.io, events_of(f.api.restart_service(kSprite, "web", 500ms))));
  CHECK(has(restarted, "stopped"));
  CHECK(has(restarted, "started"));

  auto logs = run(f.io, events_of(f.api.service_logs(kSprite, "web")));
  CHECK_THAT(output_of(logs), Contains("hello world"));
  CHECK(types_of(logs).back() == "complete");
  auto last = run(f.io, events_of(f.api.service_logs(kSprite, "web", 1)));
  CHECK(last.size() == 2);  // one buffered event, then complete

  // TERM by signal counts as a crash: the supervisor restarts it.
  run(f.io, f.api.signal_service(kSprite, "web", "TERM"));
  auto deadline = std::chrono::steady_clock::now() + 30s;
  proto::Service after;
  do {
    std::this_thread::sleep_for(100ms);
    after = run(f.io, f.api.get_service(kSprite, "web"));
  } while ((!after.state || after.state->restart_count < 1) &&
           std::chrono::steady_clock::now() < deadline);
  REQUIRE(after.state);
  CHECK(after.state->restart_count >= 1);
  CHECK(error_of(f.io, f.api.signal_service(kSprite, "web", "NOPE")).kind() == ErrorKind::usage);

  proto::ServiceDefinition bad;  // no cmd
  CHECK(error_of(f.io, events_of(f.api.put_service(kSprite, "bad", bad))).kind() ==
        ErrorKind::usage);
  proto::ServiceDefinition needy;
  needy.cmd = "sleep";
  needy.args = {"1000"};
  needy.needs = {"web"};
  auto needy_events = run(f.io, events_of(f.api.put_service(kSprite, "needy", needy, 0s)));
  CHECK(types_of(needy_events).back() == "complete");
  CHECK(error_of(f.io, f.api.delete_service(kSprite, "web")).kind() == ErrorKind::conflict);

  run(f.io, f.api.delete_service(kSprite, "needy"));
  run(f.io, f.api.delete_service(kSprite, "web"));
  CHECK(run(f.io, f.api.list_services(kSprite)).empty());
  CHECK(error_of(f.io, f.api.delete_service(kSprite, "web")).kind() == ErrorKind::not_found);
  f.check_serving();
}
