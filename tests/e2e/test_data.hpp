// What several end-to-end tests feed the engine: reproducible binary data,
// and a TCP echo server to run inside a sprite (python3 is on the host's
// /usr, which sprites see).
#pragma once

#include <cstddef>
#include <random>
#include <string>

namespace e2e {

// n bytes of every value, the same for the same seed.
inline std::string random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 gen(seed);
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(gen() & 0xff);
  return out;
}

// A python3 program: a TCP echo server on 127.0.0.1:PORT, a thread per connection.
inline std::string echo_server(int port) {
  return "import socket, threading\n"
         "s = socket.socket()\n"
         "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
         "s.bind(('127.0.0.1', " +
         std::to_string(port) +
         "))\n"
         "s.listen(16)\n"
         "def serve(c):\n"
         "    while True:\n"
         "        d = c.recv(65536)\n"
         "        if not d: break\n"
         "        c.sendall(d)\n"
         "    c.close()\n"
         "while True:\n"
         "    c, _ = s.accept()\n"
         "    threading.Thread(target=serve, args=(c,), daemon=True).start()\n";
}

}  // namespace e2e
