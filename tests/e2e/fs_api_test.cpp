// The filesystem API of the local engine, end to end (spec §10): each test
// starts `spritescript serve` on a random port with a temporary state dir and
// drives /v1/sprites/NAME/fs/... over real sockets, checking status codes,
// JSON shapes, what lands in the sprite's layer on disk, and that hostile
// paths never leave the sprite. Timeouts are hang guards only.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "engine.hpp"
#include "json_support.hpp"
#include "process.hpp"
#include "test_data.hpp"
#include "ws_client.hpp"

namespace {

using e2e::random_bytes;

namespace json = boost::json;
namespace fs = std::filesystem;
using e2e::Engine;
using e2e::HttpReply;

constexpr auto kHangGuard = std::chrono::seconds(60);

using e2e::parse_object;
const auto str = e2e::string_field;
const auto num = e2e::int_field;

std::string enc(const std::string& s) {
  return e2e::url_encode(s);
}

std::string read_host_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A sprite of its own in a running engine, and the fs endpoints on it.
struct FsFixture {
  explicit FsFixture(std::vector<std::string> extra = {}) : engine(state, std::move(extra)) {
    REQUIRE(engine.call("POST", "/v1/sprites", R"({"name":"files"})").rfind("201 ", 0) == 0);
  }

  std::string base() const { return "/v1/sprites/files/fs/"; }
  fs::path layer() const { return state.path() / "sprites" / "files" / "fs" / "layer"; }

  HttpReply write(const std::string& path, const std::string& body, const std::string& extra = "") {
    std::string target = base() + "write?path=" + enc(path) + "&workingDir=%2Fhome%2Fsprite";
    if (!extra.empty()) target += "&" + extra;
    return engine.request("PUT", target, body, {{"Content-Type", "application/octet-stream"}});
  }
  HttpReply read(const std::string& path) {
    return engine.request("GET",
                          base() + "read?path=" + enc(path) + "&workingDir=%2Fhome%2Fsprite");
  }
  HttpReply list(const std::string& path, const std::string& extra = "") {
    std::string target = base() + "list?path=" + enc(path) + "&workingDir=%2Fhome%2Fsprite";
    if (!extra.empty()) target += "&" + extra;
    return engine.request("GET", target);
  }
  HttpReply post(const std::string& op, const std::string& body) {
    return engine.request("POST", base() + op, body, {{"Content-Type", "application/json"}});
  }
  HttpReply del(const std::string& path, const std::string& extra = "") {
    std::string target = base() + "delete?path=" + enc(path) + "&workingDir=%2Fhome%2Fsprite";
    if (!extra.empty()) target += "&" + extra;
    return engine.request("DELETE", target);
  }

  e2e::TempDir state;
  Engine engine;
};

// An fs error: the status, and {"error","code","path"} (spec §10.1).
void check_fs_error(const HttpReply& r, int status, const std::string& code,
                    const std::string& path = "") {
  INFO("status " << r.status << ", body: " << r.body);
  CHECK(r.status == status);
  json::object o = parse_object(r.body);
  CHECK(str(o, "code") == code);
  CHECK_FALSE(str(o, "error").empty());
  if (!path.empty()) CHECK(str(o, "path") == path);
}

std::vector<std::string> names(const HttpReply& r) {
  std::vector<std::string> out;
  json::object o = parse_object(r.body);
  if (const json::value* e = o.if_contains("entries"); e && e->is_array()) {
    for (const auto& entry : e->as_array()) out.push_back(str(entry.as_object(), "name"));
  }
  return out;
}

json::object first_entry(const HttpReply& r) {
  json::object o = parse_object(r.body);
  const json::value* e = o.if_contains("entries");
  if (!e || !e->is_array() || e->as_array().empty()) return {};
  return e->as_array()[0].as_object();
}

// Sends `head` and then `body` on a raw connection, closes the sending side,
// and returns everything the server answers until it closes.
std::string raw_send_and_close(int port, const std::string& head, const std::string& body) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(s >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  timeval tv{30, 0};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string all = head + body;
  for (std::size_t at = 0; at < all.size();) {
    ssize_t n = ::send(s, all.data() + at, all.size() - at, MSG_NOSIGNAL);
    if (n <= 0) break;
    at += static_cast<std::size_t>(n);
  }
  ::shutdown(s, SHUT_WR);
  std::string got;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(s, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<std::size_t>(n));
  }
  ::close(s);
  return got;
}

long peak_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

TEST_CASE("fs write and read: create, truncate, mode, parents, and the file on disk",
          "[fs][write][read]") {
  FsFixture f;
  // No mkdirParents and no mkdir: parents are made (spec §10.3, §16 item 3).
  HttpReply w = f.write("dir/sub/a.txt", "hello");
  INFO(w.body);
  REQUIRE(w.status == 200);
  json::object o = parse_object(w.body);
  CHECK(str(o, "path") == "/home/sprite/dir/sub/a.txt");
  CHECK(num(o, "size") == 5);
  CHECK(str(o, "mode") == "0644");
  CHECK(read_host_file(f.layer() / "home/sprite/dir/sub/a.txt") == "hello");

  HttpReply r = f.read("dir/sub/a.txt");
  CHECK(r.status == 200);
  CHECK(r.body == "hello");
  CHECK(r.header("content-type") == "application/octet-stream");

  // Truncate with a mode; an absolute path ignores workingDir.
  w = f.write("/home/sprite/dir/sub/a.txt", "hi", "mode=0600&mkdirParents=true");
  REQUIRE(w.status == 200);
  CHECK(str(parse_object(w.body), "mode") == "0600");
  CHECK(f.read("/home/sprite/dir/sub/a.txt").body == "hi");
  struct stat st {};
  REQUIRE(::stat((f.layer() / "home/sprite/dir/sub/a.txt").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0600);
  // Without a mode, a rewrite keeps the file's mode.
  w = f.write("dir/sub/a.txt", "again");
  CHECK(str(parse_object(w.body), "mode") == "0600");

  // An empty body makes an empty file; workingDir absent means /home/sprite.
  HttpReply e = f.engine.request("PUT", f.base() + "write?path=empty", "");
  REQUIRE(e.status == 200);
  CHECK(str(parse_object(e.body), "path") == "/home/sprite/empty");
  CHECK(f.read("/home/sprite/empty").body.empty());

  // Both names of the flag are honoured.
  check_fs_error(f.write("nope/x.txt", "x", "mkdirParents=false"), 404, "ENOENT",
                 "/home/sprite/nope/x.txt");
  check_fs_error(f.write("nope/x.txt", "x", "mkdir=false"), 404, "ENOENT");
  CHECK_FALSE(fs::exists(f.layer() / "home/sprite/nope"));

  // Errors.
  check_fs_error(f.read("missing.txt"), 404, "ENOENT", "/home/sprite/missing.txt");
  check_fs_error(f.read("dir"), 400, "EISDIR", "/home/sprite/dir");
  check_fs_error(f.write("dir", "x"), 400, "EISDIR");
  check_fs_error(f.write("bad-mode", "x", "mode=rwx"), 400, "EINVAL");
  check_fs_error(f.write("bad-mode", "x", "mode=0999"), 400, "EINVAL");
  check_fs_error(f.write("", "x"), 400, "EINVAL");
  check_fs_error(f.write("dir/sub/a.txt/below", "x"), 400, "ENOTDIR");
  check_fs_error(f.read("/dev/zero"), 400, "EINVAL");  // only regular files are read
  CHECK_FALSE(fs::exists(f.layer() / "home/sprite/bad-mode"));
  // Writing over / itself (a read-only tmpfs) is refused clearly.
  check_fs_error(f.write("/new-top-level-file", "x"), 403, "EACCES");
  // The layer holds no temp files afterwards.
  for (const auto& entry : fs::recursive_directory_iterator(f.layer() / "home/sprite")) {
    CHECK(entry.path().filename().string().find(".upload-") == std::string::npos);
  }
  CHECK(f.engine.request("GET", "/v1/sprites").status == 200);
}

TEST_CASE("fs list: children only, one entry for a file, recursive, pattern, 404", "[fs][list]") {
  FsFixture f;
  REQUIRE(f.write("app/main.go", "package main\n").status == 200);
  REQUIRE(f.write("app/lib/util.go", "package lib\n").status == 200);
  REQUIRE(f.write("app/README.md", "# app\n", "mode=0640").status == 200);

  HttpReply l = f.list("app");
  INFO(l.body);
  REQUIRE(l.status == 200);
  json::object o = parse_object(l.body);
  CHECK(str(o, "path") == "/home/sprite/app");
  CHECK(num(o, "count") == 3);
  CHECK(names(l) == std::vector<std::string>{"README.md", "lib", "main.go"});
  json::object lib = parse_object(l.body).at("entries").as_array()[1].as_object();
  CHECK(str(lib, "type") == "directory");
  CHECK(lib.at("isDir").as_bool());
  CHECK(str(lib, "path") == "/home/sprite/app/lib");
  CHECK(str(lib, "mode") == "0755");
  CHECK(str(lib, "modTime").size() >= 20);

  // A file: exactly one entry, itself (how both SDKs stat).
  HttpReply one = f.list("app/README.md");
  REQUIRE(one.status == 200);
  CHECK(num(parse_object(one.body), "count") == 1);
  json::object e = first_entry(one);
  CHECK(str(e, "name") == "README.md");
  CHECK(str(e, "path") == "/home/sprite/app/README.md");
  CHECK(str(e, "type") == "file");
  CHECK(num(e, "size") == 6);
  CHECK(str(e, "mode") == "0640");
  CHECK_FALSE(e.at("isDir").as_bool());

  HttpReply rec = f.list("app", "recursive=true");
  CHECK(names(rec) == std::vector<std::string>{"README.md", "lib", "util.go", "main.go"});
  HttpReply pat = f.list("app", "recursive=true&pattern=" + enc("*.go"));
  CHECK(names(pat) == std::vector<std::string>{"util.go", "main.go"});

  check_fs_error(f.list("app/missing"), 404, "ENOENT", "/home/sprite/app/missing");
  check_fs_error(f.list("app/main.go/x"), 400, "ENOTDIR");
  check_fs_error(f.list("app", "recursive=maybe"), 400, "EINVAL");
}

TEST_CASE("fs delete: files, ENOTEMPTY, recursive with the deleted list, a JSON body, 404",
          "[fs][delete]") {
  FsFixture f;
  REQUIRE(f.write("t/a/b.txt", "b").status == 200);
  REQUIRE(f.write("t/c.txt", "c").status == 200);
  REQUIRE(f.write("single.txt", "s").status == 200);

  HttpReply d = f.del("single.txt");
  REQUIRE(d.status == 200);
  json::object o = parse_object(d.body);
  CHECK(num(o, "count") == 1);
  CHECK(json::serialize(o.at("deleted")) == R"(["/home/sprite/single.txt"])");
  CHECK_FALSE(fs::exists(f.layer() / "home/sprite/single.txt"));

  check_fs_error(f.del("t"), 409, "ENOTEMPTY", "/home/sprite/t");
  CHECK(fs::exists(f.layer() / "home/sprite/t/a/b.txt"));

  d = f.del("t", "recursive=true");
  REQUIRE(d.status == 200);
  o = parse_object(d.body);
  CHECK(num(o, "count") == 4);
  CHECK(json::serialize(o.at("deleted")) ==
        R"(["/home/sprite/t","/home/sprite/t/a","/home/sprite/t/a/b.txt","/home/sprite/t/c.txt"])");
  CHECK_FALSE(fs::exists(f.layer() / "home/sprite/t"));

  check_fs_error(f.del("t"), 404, "ENOENT", "/home/sprite/t");

  // The Docs' form: a JSON body on the DELETE.
  REQUIRE(f.write("viabody/x", "x").status == 200);
  HttpReply b =
      f.engine.request("DELETE", f.base() + "delete",
                       R"({"path":"viabody","workingDir":"/home/sprite","recursive":true})",
                       {{"Content-Type", "application/json"}});
  INFO(b.body);
  CHECK(b.status == 200);
  CHECK(num(parse_object(b.body), "count") == 2);
  // An empty directory goes without recursive.
  REQUIRE(f.write("emptydir/.keep", "").status == 200);
  REQUIRE(f.del("emptydir/.keep").status == 200);
  CHECK(f.del("emptydir").status == 200);

  check_fs_error(f.del("/"), 400, "EINVAL");
  check_fs_error(f.del("/home/sprite/../../.."), 400, "EINVAL");
  check_fs_error(f.engine.request("DELETE", f.base() + "delete", "{not json"), 400, "EINVAL");
}

TEST_CASE("fs rename, copy, chmod and chown", "[fs][rename][copy][chmod][chown]") {
  FsFixture f;
  REQUIRE(f.write("src/one.txt", "12345").status == 200);
  REQUIRE(f.write("src/deep/two.txt", "abc", "mode=0700").status == 200);

  // rename
  HttpReply r = f.post(
      "rename", R"({"source":"src/one.txt","dest":"moved.txt","workingDir":"/home/sprite"})");
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(str(parse_object(r.body), "source") == "/home/sprite/src/one.txt");
  CHECK(str(parse_object(r.body), "dest") == "/home/sprite/moved.txt");
  CHECK(f.read("moved.txt").body == "12345");
  check_fs_error(
      f.post("rename", R"({"source":"src/one.txt","dest":"x","workingDir":"/home/sprite"})"), 404,
      "ENOENT", "/home/sprite/src/one.txt");
  // Across the sprite's mounts (/home to /tmp): copied, then removed.
  r = f.post("rename", R"({"source":"/home/sprite/moved.txt","dest":"/tmp/moved.txt"})");
  CHECK(r.status == 200);
  CHECK(f.read("/tmp/moved.txt").body == "12345");
  check_fs_error(f.read("/home/sprite/moved.txt"), 404, "ENOENT");

  // copy: a directory needs recursive; totalBytes counts file bytes.
  check_fs_error(f.post("copy", R"({"source":"src","dest":"copy","workingDir":"/home/sprite"})"),
                 400, "EISDIR");
  HttpReply c = f.post(
      "copy",
      R"({"source":"src","dest":"copy","workingDir":"/home/sprite","recursive":true,"preserveAttrs":true})");
  INFO(c.body);
  REQUIRE(c.status == 200);
  json::object co = parse_object(c.body);
  CHECK(num(co, "totalBytes") == 3);
  CHECK(num(co, "count") == 3);  // copy, copy/deep, copy/deep/two.txt
  CHECK(f.read("copy/deep/two.txt").body == "abc");
  CHECK(str(first_entry(f.list("copy/deep/two.txt")), "mode") == "0700");
  // Into an existing directory: inside it, as cp does.
  c = f.post("copy", R"({"source":"/tmp/moved.txt","dest":"/home/sprite/copy"})");
  REQUIRE(c.status == 200);
  CHECK(f.read("copy/moved.txt").body == "12345");
  CHECK(num(parse_object(c.body), "totalBytes") == 5);
  check_fs_error(f.post("copy", R"({"source":"src","dest":"src/inside","recursive":true})"), 400,
                 "EINVAL");
  check_fs_error(f.post("copy", R"({"source":"nothing","dest":"x"})"), 404, "ENOENT");

  // chmod, recursive
  HttpReply m = f.post(
      "chmod", R"({"path":"copy","workingDir":"/home/sprite","mode":"0750","recursive":true})");
  INFO(m.body);
  REQUIRE(m.status == 200);
  json::object mo = parse_object(m.body);
  CHECK(num(mo, "count") == 4);
  CHECK(str(mo.at("affected").as_array()[0].as_object(), "path") == "/home/sprite/copy");
  CHECK(str(mo.at("affected").as_array()[0].as_object(), "mode") == "0750");
  struct stat st {};
  REQUIRE(::stat((f.layer() / "home/sprite/copy/deep/two.txt").c_str(), &st) == 0);
  CHECK((st.st_mode & 07777) == 0750);
  check_fs_error(f.post("chmod", R"({"path":"copy","mode":"abc"})"), 400, "EINVAL");
  check_fs_error(f.post("chmod", R"({"path":"nothing","mode":"0644"})"), 404, "ENOENT");

  // chown: numbers and names from the sprite's own /etc/passwd and /etc/group.
  HttpReply o1 = f.post("chown", R"({"path":"copy","uid":0,"gid":0,"recursive":true})");
  INFO(o1.body);
  REQUIRE(o1.status == 200);
  CHECK(num(parse_object(o1.body), "count") == 4);
  HttpReply o2 = f.post("chown", R"({"path":"copy/moved.txt","uid":"root","gid":"root"})");
  INFO(o2.body);
  REQUIRE(o2.status == 200);
  json::object a = parse_object(o2.body).at("affected").as_array()[0].as_object();
  CHECK(num(a, "uid") == 0);
  CHECK(num(a, "gid") == 0);
  check_fs_error(f.post("chown", R"({"path":"copy","uid":"no-such-user-here"})"), 400, "EINVAL");
  check_fs_error(f.post("chown", R"({"path":"copy"})"), 400, "EINVAL");
  check_fs_error(f.post("chmod", "[1,2]"), 400, "EINVAL");
  CHECK(f.engine.request("GET", "/v1/sprites").status == 200);
}

TEST_CASE("fs paths never leave the sprite: .., absolute symlinks, loops, /proc magic links",
          "[fs][security]") {
  FsFixture f;
  // The sprite has to run once so that its layer and /etc/hostname exist.
  REQUIRE(f.write("probe", "x").status == 200);
  const fs::path home = f.layer() / "home" / "sprite";

  // `..` stops at the sprite's root: this is the sprite's /etc/hostname.
  HttpReply r = f.read("../../../../../../../../etc/hostname");
  INFO(r.body);
  REQUIRE(r.status == 200);
  CHECK(r.body == "files\n");
  // Symlinks made inside the sprite (here: straight in its layer) that point
  // at / or climb with .. resolve in the sprite's root, never the host's.
  fs::create_symlink("/", home / "to-root");
  fs::create_symlink("../../../../../../../../../..", home / "climb");
  fs::create_symlink("/etc/hostname", home / "abs-file");
  CHECK(f.read("to-root/etc/hostname").body == "files\n");
  CHECK(f.read("climb/etc/hostname").body == "files\n");
  CHECK(f.read("abs-file").body == "files\n");
  // A write through an absolute symlink lands in the sprite's /tmp.
  REQUIRE(f.write("to-root/tmp/through-link", "inside").status == 200);
  CHECK(read_host_file(f.layer() / "tmp" / "through-link") == "inside");
  CHECK_FALSE(fs::exists("/tmp/through-link"));
  // Writing to a symlink writes its target (in the sprite), the link stays.
  fs::create_symlink("/tmp/link-target", home / "link-to-tmp");
  REQUIRE(f.write("link-to-tmp", "via link").status == 200);
  CHECK(fs::is_symlink(home / "link-to-tmp"));
  CHECK(read_host_file(f.layer() / "tmp" / "link-target") == "via link");

  // The sprite's / is not the host's: no /work, no state dir.
  HttpReply top = f.list("/");
  REQUIRE(top.status == 200);
  std::vector<std::string> root_names = names(top);
  CHECK(std::find(root_names.begin(), root_names.end(), "home") != root_names.end());
  CHECK(std::find(root_names.begin(), root_names.end(), "work") == root_names.end());
  CHECK(std::find(root_names.begin(), root_names.end(), "sprites") == root_names.end());

  // Loops and /proc magic links are refused, not followed.
  fs::create_symlink("loop-b", home / "loop-a");
  fs::create_symlink("loop-a", home / "loop-b");
  check_fs_error(f.read("loop-a"), 400, "EINVAL");
  check_fs_error(f.write("loop-a", "x"), 400, "EINVAL");
  HttpReply magic = f.read("/proc/1/root/etc/hostname");
  CHECK(magic.status >= 400);
  CHECK(magic.body.find("files") == std::string::npos);
  CHECK(f.read("/proc/self/root/etc/passwd").status >= 400);
  CHECK(f.list("/proc/1/cwd").status >= 400);

  // A symlinked parent, then deleting through it: only the sprite's file goes.
  fs::create_directories(home / "real");
  REQUIRE(f.write("real/victim", "v").status == 200);
  fs::create_symlink("/home/sprite/real", home / "swapped");
  HttpReply d = f.del("swapped/victim");
  CHECK(d.status == 200);
  CHECK_FALSE(fs::exists(home / "real" / "victim"));
  // Deleting a symlink removes the link, not its target.
  CHECK(f.del("to-root").status == 200);
  CHECK(fs::exists(f.layer() / "tmp" / "through-link"));
  // Copy and rename cannot reach out either.
  HttpReply c = f.post("copy", R"({"source":"/etc/hostname","dest":"/home/sprite/h"})");
  CHECK(c.status == 200);
  CHECK(read_host_file(home / "h") == "files\n");
  CHECK(f.engine.request("GET", "/v1/sprites").status == 200);
}

TEST_CASE("fs paths with --sandbox=none stay in the sprite's layer", "[fs][security]") {
  FsFixture f({"--sandbox=none"});
  HttpReply w = f.write("../../../../../../../escaped", "x");
  INFO(w.body);
  REQUIRE(w.status == 200);
  CHECK(str(parse_object(w.body), "path") == "/escaped");
  CHECK(fs::exists(f.layer() / "escaped"));
  CHECK_FALSE(fs::exists(f.state.path() / "sprites" / "files" / "escaped"));
  fs::create_symlink("/", f.layer() / "home" / "sprite" / "up");
  fs::create_symlink("../../../../../..", f.layer() / "home" / "sprite" / "climb");
  REQUIRE(f.write("up/marker", "m").status == 200);
  CHECK(fs::exists(f.layer() / "marker"));
  REQUIRE(f.write("climb/marker2", "m").status == 200);
  CHECK(fs::exists(f.layer() / "marker2"));
  CHECK(f.read("climb/marker2").body == "m");
}

TEST_CASE("fs write streams a body over 64 MiB to disk and a cut upload leaves nothing",
          "[fs][stream]") {
  FsFixture f;
  REQUIRE(f.write("keep.bin", "old content").status == 200);
  const long rss_before = peak_rss_kib(f.engine.child().pid());
  const std::string big = random_bytes(std::size_t{96} << 20, 7);
  HttpReply w = f.write("big.bin", big);
  INFO(w.body);
  REQUIRE(w.status == 200);
  CHECK(num(parse_object(w.body), "size") == static_cast<std::int64_t>(big.size()));
  CHECK(fs::file_size(f.layer() / "home/sprite/big.bin") == big.size());
  HttpReply r = f.read("big.bin");
  REQUIRE(r.status == 200);
  CHECK(r.body.size() == big.size());
  CHECK(r.body == big);
  const long rss_after = peak_rss_kib(f.engine.child().pid());
  INFO("engine peak RSS " << rss_before << " KiB -> " << rss_after << " KiB");
  CHECK(rss_after - rss_before < 48 * 1024);  // neither direction held the 96 MiB

  // A client that sends part of the body and goes away: no partial file, the
  // old content stays, and no temp file is left behind.
  const std::string head = "PUT " + f.base() +
                           "write?path=keep.bin&workingDir=%2Fhome%2Fsprite HTTP/1.1\r\n"
                           "Host: localhost\r\nAuthorization: Bearer " +
                           e2e::kTestToken + "\r\nContent-Length: 1000000\r\n\r\n";
  std::string answer = raw_send_and_close(f.engine.port(), head, std::string(1000, 'z'));
  INFO(answer);
  CHECK(f.read("keep.bin").body == "old content");
  std::string answer2 = raw_send_and_close(
      f.engine.port(),
      "PUT " + f.base() + "write?path=fresh.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
          e2e::kTestToken + "\r\nTransfer-Encoding: chunked\r\n\r\n",
      "10\r\n0123456789abcdef\r\n");
  check_fs_error(f.read("fresh.bin"), 404, "ENOENT");
  for (const auto& entry : fs::directory_iterator(f.layer() / "home/sprite")) {
    CHECK(entry.path().filename().string().find(".upload-") == std::string::npos);
  }

  // A chunked upload that completes is written; Expect: 100-continue is answered.
  std::string chunked = raw_send_and_close(
      f.engine.port(),
      "PUT " + f.base() + "write?path=chunked.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
          e2e::kTestToken +
          "\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  INFO(chunked);
  CHECK(chunked.rfind("HTTP/1.1 100 Continue\r\n", 0) == 0);
  CHECK(chunked.find("HTTP/1.1 200 OK") != std::string::npos);
  CHECK(f.read("chunked.bin").body == "hello world");

  // An error answered before the body was read still reaches the client, and
  // the engine goes on serving (this connection is then closed).
  HttpReply bad = f.write("big.bin/under-a-file", std::string(std::size_t{8} << 20, 'q'));
  check_fs_error(bad, 400, "ENOTDIR");
  // Other request bodies keep their 64 MiB limit.
  std::string over = e2e::raw_exchange(
      f.engine.port(), "POST /v1/sprites HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                           e2e::kTestToken + "\r\nContent-Length: 67108870\r\n\r\n{}");
  CHECK(over.rfind("HTTP/1.1 413", 0) == 0);
  CHECK(f.engine.request("GET", "/v1/sprites").status == 200);
}

TEST_CASE("fs watch: subscribe, subscribed, events for writes and removes, close ends it",
          "[fs][watch]") {
  FsFixture f;
  REQUIRE(f.write("watched/.keep", "").status == 200);
  auto ws = f.engine.websocket(f.base() + "watch");
  REQUIRE(ws->connected());
  ws->send_text(
      R"({"type":"subscribe","paths":["watched"],"recursive":true,"workingDir":"/home/sprite"})");
  auto first = ws->read(kHangGuard);
  REQUIRE(first);
  INFO(first->data);
  json::object sub = parse_object(first->data);
  CHECK(str(sub, "type") == "subscribed");
  CHECK(json::serialize(sub.at("paths")) == R"(["/home/sprite/watched"])");

  REQUIRE(f.write("watched/new.txt", "data").status == 200);
  REQUIRE(f.write("watched/nested/deep.txt", "d").status == 200);
  bool saw_new = false;
  bool saw_nested = false;
  while (!saw_new || !saw_nested) {
    auto m = ws->read(kHangGuard);
    REQUIRE(m);
    json::object ev = parse_object(m->data);
    INFO(m->data);
    REQUIRE(str(ev, "type") == "event");
    CHECK_FALSE(str(ev, "timestamp").empty());
    CHECK(ev.contains("isDir"));
    CHECK(ev.contains("size"));
    // Uploads land by rename: the new name shows up as rename (or create).
    if (str(ev, "path") == "/home/sprite/watched/new.txt") saw_new = true;
    if (str(ev, "path") == "/home/sprite/watched/nested/deep.txt") saw_nested = true;
  }
  REQUIRE(f.del("watched/new.txt").status == 200);
  for (;;) {
    auto m = ws->read(kHangGuard);
    REQUIRE(m);
    json::object ev = parse_object(m->data);
    if (str(ev, "path") == "/home/sprite/watched/new.txt" && str(ev, "event") == "remove") break;
  }
  ws->close(1000, kHangGuard);

  // A path that does not exist: an error message, then the server closes.
  auto bad = f.engine.websocket(f.base() + "watch");
  REQUIRE(bad->connected());
  bad->send_text(R"({"type":"subscribe","paths":["/nowhere"]})");
  auto err = bad->read(kHangGuard);
  REQUIRE(err);
  CHECK(str(parse_object(err->data), "type") == "error");
  CHECK(f.engine.request("GET", "/v1/sprites").status == 200);
}

TEST_CASE("fs endpoints: unknown operation, wrong method, unknown sprite, no token",
          "[fs][errors]") {
  FsFixture f;
  check_fs_error(f.engine.request("GET", f.base() + "frobnicate"), 404, "ENOENT");
  HttpReply m = f.engine.request("POST", f.base() + "read?path=x");
  CHECK(m.status == 405);
  CHECK(f.engine.request("GET", "/v1/sprites/nobody/fs/read?path=x").status == 404);
  CHECK(f.engine.request("GET", f.base() + "read?path=x", "", {}, "").status == 401);
  HttpReply put = f.engine.request("PUT", f.base() + "write?path=x", "body", {}, "");
  CHECK(put.status == 401);
  CHECK_FALSE(fs::exists(f.layer() / "home/sprite/x"));
}
