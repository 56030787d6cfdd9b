// Asio's SSL implementation, compiled once (BOOST_ASIO_SEPARATE_COMPILATION,
// like src/asio_impl.cpp): only the client speaks TLS.
#include <boost/asio/ssl/impl/src.hpp>
