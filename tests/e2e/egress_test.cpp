// A sprite's egress (docs/networking.md, "Egress"), end to end: the engine
// runs with `--resolve allowed.test=127.0.0.1 --resolve denied.test=127.0.0.2`,
// the test serves HTTP on those host addresses, and programs inside the
// sprite (curl, python3, getent, from the host's /usr) reach them, or not,
// through the engine's proxy and resolver as the sprite's network policy
// says. Timeouts are hang guards only; nothing asserts on timing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine.hpp"
#include "json_support.hpp"
#include "process.hpp"

namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;
using e2e::Engine;
using Clock = std::chrono::steady_clock;

// An HTTP server on a host address: "GET /stream" gets a line every 50 ms
// until the peer goes away; anything else gets "hello from IP".
class HostServer {
 public:
  explicit HostServer(const std::string& ip)
      : ip_(ip), stop_(std::make_shared<std::atomic<bool>>()) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    ::inet_pton(AF_INET, ip.c_str(), &address.sin_addr);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::listen(fd_, 64) == 0);
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~HostServer() {
    stop_->store(true);
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }
  int port() const { return port_; }

 private:
  void accept_loop() {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::thread([c, ip = ip_, stop = stop_] { serve(c, ip, *stop); }).detach();
    }
  }
  static void serve(int c, const std::string& ip, const std::atomic<bool>& stop) {
    std::string head;
    char buffer[4096];
    while (head.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(c, buffer, sizeof buffer);
      if (n <= 0) break;
      head.append(buffer, static_cast<std::size_t>(n));
    }
    if (head.starts_with("GET /stream ")) {
      std::string start = "HTTP/1.0 200 OK\r\n\r\n";
      ::send(c, start.data(), start.size(), MSG_NOSIGNAL);
      while (!stop.load()) {
        if (::send(c, "tick\n", 5, MSG_NOSIGNAL) != 5) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    } else {
      std::string body = "hello from " + ip;
      std::string reply =
          "HTTP/1.0 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
      ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
    }
    ::close(c);
  }

  std::string ip_;
  int fd_ = -1;
  int port_ = 0;
  std::shared_ptr<std::atomic<bool>> stop_;
  std::thread thread_;
};

std::vector<std::string> resolve_options() {
  return {"--resolve", "allowed.test=127.0.0.1", "--resolve", "denied.test=127.0.0.2"};
}

void create_sprite(Engine& engine, const std::string& name) {
  REQUIRE_THAT(engine.call("POST", "/v1/sprites", R"({"name":")" + name + R"("})"),
               StartsWith("201 "));
}

void set_policy(Engine& engine, const std::string& sprite, const std::string& policy) {
  REQUIRE(engine.call("POST", "/v1/sprites/" + sprite + "/policy/network", policy) == "204 ");
}

std::string exec_target(const std::string& sprite, const std::string& script) {
  return "/v1/sprites/" + sprite + "/exec?cmd=bash&cmd=-c&cmd=" + e2e::url_encode(script) +
         "&path=bash&stdin=false";
}

// Runs `script` with bash to its end (HTTP exec); its exit code.
int sh(Engine& engine, const std::string& sprite, const std::string& script) {
  auto reply = engine.request("POST", exec_target(sprite, script));
  REQUIRE(reply.status == 200);
  const std::string& b = reply.body;
  REQUIRE(b.size() >= 2);
  REQUIRE(b[b.size() - 2] == 3);  // the last frame is 03 <code>
  return static_cast<unsigned char>(b.back());
}

// A file in the sprite (the filesystem API).
std::string file(Engine& engine, const std::string& sprite, const std::string& path) {
  auto reply =
      engine.request("GET", "/v1/sprites/" + sprite + "/fs/read?path=" + e2e::url_encode(path));
  INFO(reply.body);
  REQUIRE(reply.status == 200);
  return reply.body;
}

// `script`'s stdout and stderr, through a file.
std::string output(Engine& engine, const std::string& sprite, const std::string& script) {
  sh(engine, sprite, "(" + script + ") > /tmp/out 2>&1");
  return file(engine, sprite, "/tmp/out");
}

std::string curl(const std::string& args) {
  return "curl -sS -m 20 " + args;
}

// The DNS rcode the engine's resolver answers for an A query of `name`
// (python3, straight to 127.0.0.53: getent cannot tell REFUSED apart).
std::string rcode_script(const std::string& name) {
  return "python3 -c \"\n"
         "import socket, struct\n"
         "q = struct.pack('>HHHHHH', 7, 0x100, 1, 0, 0, 0)\n"
         "q += b''.join(bytes([len(l)]) + l.encode() for l in '" +
         name +
         "'.split('.')) + b'\\\\0' + struct.pack('>HH', 1, 1)\n"
         "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(10)\n"
         "s.sendto(q, ('127.0.0.53', 53))\n"
         "r = s.recv(512)\n"
         "print('rcode', r[3] & 15, 'answers', struct.unpack('>H', r[6:8])[0])\n\"";
}

}  // namespace

TEST_CASE("Egress: a sprite reaches the names its policy allows, by name and by IP, and no others",
          "[egress]") {
  e2e::TempDir state;
  Engine engine(state, resolve_options());
  HostServer allowed("127.0.0.1");
  HostServer denied("127.0.0.2");
  const std::string a = std::to_string(allowed.port());
  const std::string d = std::to_string(denied.port());
  create_sprite(engine, "net");

  SECTION("with no policy, both names resolve and answer through the proxy") {
    CHECK(output(engine, "net", curl("http://allowed.test:" + a + "/")) == "hello from 127.0.0.1");
    CHECK(output(engine, "net", curl("http://denied.test:" + d + "/")) == "hello from 127.0.0.2");
    CHECK_THAT(output(engine, "net", "getent hosts denied.test"), StartsWith("127.0.0.2"));
  }

  SECTION("allowed only allowed.test") {
    set_policy(engine, "net", R"({"rules":[{"domain":"allowed.test","action":"allow"}]})");
    // By name: plain HTTP (absolute URL), CONNECT (-p) and python's urllib.
    CHECK(output(engine, "net", curl("http://allowed.test:" + a + "/")) == "hello from 127.0.0.1");
    CHECK(output(engine, "net", curl("-p http://allowed.test:" + a + "/")) ==
          "hello from 127.0.0.1");
    CHECK(output(engine, "net",
                 "python3 -c 'import urllib.request; print(urllib.request.urlopen("
                 "\"http://allowed.test:" +
                     a + "/\").read().decode())'") == "hello from 127.0.0.1\n");
    CHECK_THAT(output(engine, "net", curl("http://denied.test:" + d + "/")),
               Contains("blocked by the sprite's network policy: denied.test"));
    CHECK_THAT(output(engine, "net", curl("-p http://denied.test:" + d + "/") + "; echo exit=$?"),
               Contains("403") && Contains("exit=56"));
    // The resolver: allowed names answer, denied ones are REFUSED.
    CHECK(output(engine, "net", rcode_script("allowed.test")) == "rcode 0 answers 1\n");
    CHECK(output(engine, "net", rcode_script("denied.test")) == "rcode 5 answers 0\n");
    CHECK(sh(engine, "net", "getent hosts denied.test") != 0);
    // By raw IP: only an address an allowed name resolved to.
    CHECK_THAT(output(engine, "net", curl("http://127.0.0.2:" + d + "/")),
               Contains("blocked by the sprite's network policy: 127.0.0.2"));
    sh(engine, "net", "getent hosts allowed.test");
    CHECK(output(engine, "net", curl("http://127.0.0.1:" + a + "/ --noproxy ''")) ==
          "hello from 127.0.0.1");
    // Around the proxy: no route out of the sprite.
    CHECK_THAT(output(engine, "net",
                      "python3 -c 'import socket; socket.create_connection((\"192.0.2.1\", 80), "
                      "timeout=10)'"),
               Contains("Network is unreachable"));
    CHECK(sh(engine, "net", curl("--noproxy '*' http://192.0.2.1/")) == 7);
  }

  SECTION("a policy change applies to new connections of a running process at once") {
    // One process: a request, then (once told) another; the policy changes between them.
    std::string script =
        "code() { curl -s -o /dev/null -w '%{http_code}' -m 20 http://allowed.test:" + a +
        "/; }; echo first=$(code) > /tmp/first; "
        "while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second=$(code) > /tmp/second";
    auto ws = engine.websocket(exec_target("net", script) + "&max_run_after_disconnect=0");
    REQUIRE(ws->connected());
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (sh(engine, "net", "test -s /tmp/first") != 0) {
      REQUIRE(Clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    CHECK(file(engine, "net", "/tmp/first") == "first=200\n");
    set_policy(engine, "net", R"({"rules":[{"domain":"other.test","action":"allow"}]})");
    sh(engine, "net", "touch /tmp/go");
    while (auto m = ws->read()) {
      if (m->binary && !m->data.empty() && m->data[0] == 3) break;
    }
    CHECK(file(engine, "net", "/tmp/second") == "second=403\n");
  }

  SECTION("a connection to a name the new policy denies is cut") {
    set_policy(engine, "net", R"({"rules":[{"domain":"allowed.test","action":"allow"}]})");
    auto ws = engine.websocket(
        exec_target("net", curl("-N http://allowed.test:" + a +
                                "/stream > /tmp/ticks 2>&1; echo exit=$? >> /tmp/ticks")) +
        "&max_run_after_disconnect=0");
    REQUIRE(ws->connected());
    const auto deadline = Clock::now() + std::chrono::seconds(60);
    while (sh(engine, "net", "grep -q tick /tmp/ticks 2>/dev/null") != 0) {
      REQUIRE(Clock::now() < deadline);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    // Still allowed: the stream goes on.
    set_policy(engine, "net", R"({"rules":[{"domain":"*.test","action":"allow"}]})");
    // Now denied: cut.
    set_policy(engine, "net", R"({"rules":[{"domain":"*.test","action":"deny"}]})");
    while (auto m = ws->read()) {
      if (m->binary && !m->data.empty() && m->data[0] == 3) break;
    }
    std::string ticks = file(engine, "net", "/tmp/ticks");
    CHECK_THAT(ticks, Contains("tick\n"));
    CHECK_THAT(ticks, Contains("exit=56"));  // curl: failure receiving data (reset)
  }
}

TEST_CASE("Egress: the policy is the sprite's, readable inside and kept across a restore",
          "[egress]") {
  e2e::TempDir state;
  Engine engine(state, resolve_options());
  create_sprite(engine, "keep");
  const std::string policy =
      R"({"rules":[{"include":"defaults"},{"domain":"allowed.test","action":"allow"}]})";
  set_policy(engine, "keep", policy);
  CHECK(output(engine, "keep", "cat /.sprite/policy/network.json") == policy + "\n");
  CHECK_THAT(output(engine, "keep", "echo x > /.sprite/policy/network.json"),
             Contains("Read-only file system"));
  REQUIRE_THAT(engine.call("POST", "/v1/sprites/keep/checkpoint", "{}"), StartsWith("200 "));
  set_policy(engine, "keep", R"({"rules":[]})");
  REQUIRE_THAT(engine.call("POST", "/v1/sprites/keep/checkpoints/v0/restore", ""),
               StartsWith("200 "));
  CHECK(engine.call("GET", "/v1/sprites/keep/policy/network") == R"(200 {"rules":[]})");
  CHECK(output(engine, "keep", "cat /.sprite/policy/network.json") == "{\"rules\":[]}\n");
}

TEST_CASE("Egress: a malformed --resolve is refused with one line and exit 2", "[egress]") {
  e2e::TempDir state;
  e2e::Command command;
  command.argv = {SPRITESCRIPT_BIN,      "serve",     "--state-dir",
                  state.path().string(), "--resolve", "nothing-here"};
  auto result = e2e::run(command);
  INFO(result.describe());
  CHECK(result.exited);
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.err, Contains("--resolve wants NAME=IP"));
}
