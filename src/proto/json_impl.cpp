// Boost.JSON's implementation, compiled once into this library instead of
// linked from libboost_json.so (one shared library less to load at start).
#include <boost/json/src.hpp>
