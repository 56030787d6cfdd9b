// A FIFO async mutex for coroutines on one io_context thread: a channel with
// room for one token (a full channel makes the next lock() wait).
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace spritescript::util {

class AsyncMutex {
 public:
  explicit AsyncMutex(const boost::asio::any_io_executor& ex) : channel_(ex, 1) {}
  boost::asio::awaitable<void> lock() {
    co_await channel_.async_send(boost::system::error_code{},
                                 boost::asio::as_tuple(boost::asio::use_awaitable));
  }
  void unlock() {
    channel_.try_receive([](boost::system::error_code) {});
  }

 private:
  boost::asio::experimental::channel<void(boost::system::error_code)> channel_;
};

}  // namespace spritescript::util
