// The egress proxy's request heads (src/proto/proxy_request.*): anything
// parses or is refused with a reason; what parses has a host and a valid
// port, and a forwarded head is one well-formed origin-form head that
// carries no proxy or hop-by-hop headers and closes the connection.
#include "fuzz_check.hpp"
#include "proto/proxy_request.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace spritescript::proto;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view head(reinterpret_cast<const char*>(data), size);
  std::string error;
  auto request = parse_proxy_request(head, error);
  if (!request) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  FUZZ_CHECK(!request->host.empty());
  FUZZ_CHECK(request->port >= 1 && request->port <= 65535);
  if (request->connect) return 0;
  FUZZ_CHECK(!request->target.empty() && request->target.front() == '/');
  std::string forwarded = forwarded_head(*request);
  FUZZ_CHECK(forwarded.size() >= 4 && forwarded.compare(forwarded.size() - 4, 4, "\r\n\r\n") == 0);
  FUZZ_CHECK(forwarded.find("\r\n\r\n") == forwarded.size() - 4);  // one head, nothing after
  FUZZ_CHECK(forwarded.find("\r\nConnection: close\r\n") != std::string::npos);
  FUZZ_CHECK(forwarded.find("\r\nProxy-") == std::string::npos &&
             forwarded.find("\r\nproxy-") == std::string::npos);
  return 0;
}
