// Two TCP connections joined: bytes are copied both ways until both
// directions ended. An end-of-file is passed on as a half-close, so a
// request-then-response protocol finishes normally. Used by the egress
// proxy (a sprite's connection to the internet) and the sprite URL (a
// browser's connection to port 8080 in the sprite).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cstdint>
#include <memory>

namespace spritescript::engine {

class TcpRelay : public std::enable_shared_from_this<TcpRelay> {
 public:
  TcpRelay(boost::asio::ip::tcp::socket a, boost::asio::ip::tcp::socket b);

  // Copies until both directions ended (or abort()), then closes both.
  boost::asio::awaitable<void> run();
  // Ends the relay at once: both connections are closed (reset).
  void abort();

  std::uint64_t bytes_a_to_b() const { return a_to_b_; }
  std::uint64_t bytes_b_to_a() const { return b_to_a_; }

 private:
  boost::asio::awaitable<void> pump(boost::asio::ip::tcp::socket& from,
                                    boost::asio::ip::tcp::socket& to, std::uint64_t& count);

  boost::asio::ip::tcp::socket a_, b_;
  boost::asio::steady_timer finished_;
  int running_ = 0;
  std::uint64_t a_to_b_ = 0, b_to_a_ = 0;
};

}  // namespace spritescript::engine
