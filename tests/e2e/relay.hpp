// A fault-injecting TCP relay for the client tests: it listens on
// 127.0.0.1:0 and forwards bytes both ways to a target port (the engine),
// and on request breaks things the way bad networks and busy servers do:
// it cuts a connection after so many bytes from the server (mid-response,
// mid-WebSocket, mid-NDJSON), delays what the server sends, or answers a
// connection itself with a canned HTTP refusal (503, 429 with Retry-After)
// instead of forwarding it. With a certificate it terminates TLS and
// forwards plaintext. It counts what it did so tests can assert on it.
//
// The relay runs on its own thread with its own io_context (plain
// callback-style Asio); the code under test runs on the test's thread.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "process.hpp"

namespace e2e {

// What the relay does with one connection. The default forwards it as is.
struct RelayPlan {
  // Non-empty: read the request head, answer this instead of forwarding
  // the connection, and close it.
  std::string refuse_with;
  // Cut both sides once the server has sent `cut_marker` `cut_occurrences`
  // times (no marker: from the first byte) and then `cut_after` bytes more.
  // The bytes up to the cut reach the client; nothing after.
  std::optional<std::size_t> cut_after;
  std::string cut_marker;
  int cut_occurrences = 1;
  // Held back before each piece the server sends is passed on.
  Millis delay{0};

  // A connection answered with `response` (see http_answer()).
  static RelayPlan refuse(std::string response);
  // A connection cut after `bytes` from the server, counted from the end
  // of the `occurrences`-th `marker` when one is given.
  static RelayPlan cut(std::size_t bytes, std::string marker = {}, int occurrences = 1);
  // A connection whose server bytes are held back `delay` each time.
  static RelayPlan delayed(Millis delay);
};

// "HTTP/1.1 STATUS REASON" with Connection: close, a JSON error body and
// `extra_headers` (each "Name: value\r\n").
std::string http_answer(int status, const std::string& reason,
                        const std::string& extra_headers = {});

class Relay {
 public:
  struct Tls {
    std::filesystem::path cert_chain;  // PEM, the server's certificate first
    std::filesystem::path key;         // PEM private key
  };

  // Starts relaying to 127.0.0.1:`target_port`; with `tls`, clients speak
  // TLS to the relay (the target still gets plaintext).
  explicit Relay(int target_port, std::optional<Tls> tls = std::nullopt);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  int port() const { return port_; }

  // The next connection accepted takes the first plan queued, the one
  // after it the second, and so on; once they are used up, connections
  // take the default plan (plain forwarding unless set).
  void plan(RelayPlan plan);
  void set_default(RelayPlan plan);

  // Connections accepted (TCP, before any TLS handshake), answered with a
  // canned refusal, cut, and TLS handshakes that failed.
  int connections() const;
  int refused() const;
  int cuts() const;
  int handshake_failures() const;

  struct State;  // relay.cpp's

 private:
  std::unique_ptr<State> state_;
  int port_ = 0;
  std::thread thread_;
};

// A test CA and server certificates made with the openssl command line in
// a temporary directory (removed with the object).
class TestPki {
 public:
  TestPki();  // makes the CA
  const std::filesystem::path& ca_cert() const { return ca_cert_; }
  // A certificate (and key) for `dns_names` and `ip_addresses` (subjectAltName),
  // signed by the CA. Returns {cert, key}.
  Relay::Tls issue(const std::string& file_stem, const std::vector<std::string>& dns_names,
                   const std::vector<std::string>& ip_addresses = {});
  const TempDir& dir() const { return dir_; }

 private:
  TempDir dir_;
  std::filesystem::path ca_cert_;
  std::filesystem::path ca_key_;
  int serial_ = 1;
};

}  // namespace e2e
