// The client through a fault-injecting relay and over TLS (filled in by the
// fault/TLS work of issue 4).
#include <catch2/catch.hpp>
