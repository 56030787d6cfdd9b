#include "engine/tcp_relay.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <memory>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace spritescript::engine {
namespace {

constexpr std::size_t kChunk = std::size_t{256} * 1024;
constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

TcpRelay::TcpRelay(tcp::socket a, tcp::socket b)
    : a_(std::move(a)), b_(std::move(b)), finished_(a_.get_executor()) {
  finished_.expires_at(asio::steady_timer::time_point::max());
}

asio::awaitable<void> TcpRelay::pump(tcp::socket& from, tcp::socket& to, std::uint64_t& count) {
  auto self = shared_from_this();
  // Not zeroed: a short-lived connection would pay for clearing 256 KiB.
  std::unique_ptr<char[]> buffer(new char[kChunk]);
  boost::system::error_code ignored;
  for (;;) {
    auto [ec, n] = co_await from.async_read_some(asio::buffer(buffer.get(), kChunk), kAsTuple);
    if (ec == asio::error::eof) {
      to.shutdown(tcp::socket::shutdown_send, ignored);  // half-close, passed on
      break;
    }
    if (ec) {
      abort();
      break;
    }
    auto [wec, written] = co_await asio::async_write(to, asio::buffer(buffer.get(), n), kAsTuple);
    count += written;
    if (wec) {
      abort();
      break;
    }
  }
  if (--running_ == 0) finished_.cancel();
}

asio::awaitable<void> TcpRelay::run() {
  auto self = shared_from_this();
  running_ = 2;
  asio::co_spawn(a_.get_executor(), pump(b_, a_, b_to_a_), asio::detached);
  co_await pump(a_, b_, a_to_b_);
  if (running_ > 0) co_await finished_.async_wait(kAsTuple);
  boost::system::error_code ignored;
  a_.close(ignored);
  b_.close(ignored);
}

void TcpRelay::abort() {
  boost::system::error_code ignored;
  // SO_LINGER 0: a reset, so neither side mistakes the cut for a clean end.
  a_.set_option(asio::socket_base::linger(true, 0), ignored);
  b_.set_option(asio::socket_base::linger(true, 0), ignored);
  a_.close(ignored);
  b_.close(ignored);
}

}  // namespace spritescript::engine
