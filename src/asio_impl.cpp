// Asio's separately compiled implementation (BOOST_ASIO_SEPARATE_COMPILATION):
// compiled once here instead of in every translation unit that uses Asio.
#include <boost/asio/impl/src.hpp>
