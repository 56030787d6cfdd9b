// Runs blocking work (filesystem walks, big copies) on a thread pool and
// resumes the awaiting coroutine on its own executor, so the engine's event
// loop keeps serving every other sprite meanwhile.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/execution/outstanding_work.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/prefer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <exception>
#include <utility>

namespace spritescript::engine {

// `work` returns a Result; its exception, if any, is rethrown in the
// awaiting coroutine. Not a coroutine itself (GCC 12 mishandles coroutine
// parameters built from temporaries): it returns the operation to await.
template <typename Result, typename Work>
boost::asio::awaitable<Result> run_blocking(boost::asio::thread_pool& pool, Work work) {
  auto initiate = [&pool](auto handler, Work job) {
    // The awaiting coroutine's executor, kept busy until the result is back
    // (so its run() does not return while the work is out).
    auto home = boost::asio::prefer(boost::asio::get_associated_executor(handler),
                                    boost::asio::execution::outstanding_work.tracked);
    boost::asio::post(pool, [handler = std::move(handler), job = std::move(job), home]() mutable {
      std::exception_ptr error;
      Result result{};
      try {
        result = job();
      } catch (...) {
        error = std::current_exception();
      }
      boost::asio::post(
          home, [handler = std::move(handler), error, result = std::move(result)]() mutable {
            std::move(handler)(error, std::move(result));
          });
    });
  };
  return boost::asio::async_initiate<const boost::asio::use_awaitable_t<>&,
                                     void(std::exception_ptr, Result)>(
      initiate, boost::asio::use_awaitable, std::move(work));
}

}  // namespace spritescript::engine
