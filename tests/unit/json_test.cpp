// sprites.json: encode/decode on Boost.JSON, through the Lua API.
#include "lua_fixture.hpp"

namespace {
const std::string kPrelude = "local json = require 'sprites.json' ";
std::string enc(LuaFixture& f, const std::string& value, const std::string& opts = "nil") {
  return f.eval(kPrelude + "return json.encode(" + value + ", " + opts + ")");
}
std::string round_trip(LuaFixture& f, const std::string& text) {
  return f.eval(kPrelude + "return json.encode(json.decode([==[" + text + "]==]))");
}
}  // namespace

TEST_CASE("json encodes scalars", "[json]") {
  LuaFixture f;
  CHECK(enc(f, "nil") == "null");
  CHECK(enc(f, "json.null") == "null");
  CHECK(enc(f, "true") == "true");
  CHECK(enc(f, "42") == "42");
  CHECK(enc(f, "-7") == "-7");
  CHECK(enc(f, "1.5") == "1.5");
  CHECK(enc(f, "0.1") == "0.1");
  CHECK(enc(f, "1e300") == "1e+300");
  CHECK(enc(f, "2^53") == "9007199254740992");
  CHECK(enc(f, "'a\"b\\\\c\\n\\t\\1'") == R"("a\"b\\c\n\t\u0001")");
  CHECK(enc(f, "'héllo ✓'") == "\"héllo ✓\"");
}

TEST_CASE("json encodes arrays and objects", "[json]") {
  LuaFixture f;
  CHECK(enc(f, "{1, 2, 'x'}") == R"([1,2,"x"])");
  CHECK(enc(f, "{a = 1, b = {true, false}}", "{sort_keys = true}") ==
        R"({"a":1,"b":[true,false]})");
  CHECK(enc(f, "{z = 1, a = 2, m = 3}", "{sort_keys = true}") == R"({"a":2,"m":3,"z":1})");
  CHECK(enc(f, "{a = {1}}", "{indent = 2}") == "{\n  \"a\": [\n    1\n  ]\n}");
}

TEST_CASE("json empty tables: object by default, controllable", "[json]") {
  LuaFixture f;
  CHECK(enc(f, "{}") == "{}");
  CHECK(enc(f, "{}", "{empty_table = 'array'}") == "[]");
  CHECK(enc(f, "json.array{}") == "[]");
  CHECK(enc(f, "json.object{}", "{empty_table = 'array'}") == "{}");
  CHECK(enc(f, "json.array()") == "[]");
  CHECK(enc(f, "json.object{[1] = 'a'}") == R"({"1":"a"})");
}

TEST_CASE("json round-trips documents, keeping empty arrays and objects apart", "[json]") {
  LuaFixture f;
  CHECK(round_trip(f, "[]") == "[]");
  CHECK(round_trip(f, "{}") == "{}");
  CHECK(round_trip(f, R"({"a":[]})") == R"({"a":[]})");
  CHECK(round_trip(f, R"([{},[],[{}]])") == R"([{},[],[{}]])");
  CHECK(round_trip(f, R"([1,-2,3.25,"s",true,false,null])") ==
        R"([1,-2,3.25,"s",true,false,null])");
  CHECK(round_trip(f, R"("\u00e9\ud83d\ude00\n")") == "\"é😀\\n\"");
  CHECK(round_trip(f, R"(  {"k" : "v"}  )") == R"({"k":"v"})");
}

TEST_CASE("json decodes null to the sentinel and marks arrays", "[json]") {
  LuaFixture f;
  CHECK(f.eval(kPrelude + "return tostring(json.decode('null') == json.null)") == "true");
  CHECK(f.eval(kPrelude + "return tostring(json.decode('[null]')[1] == json.null)") == "true");
  CHECK(f.eval(kPrelude + "return tostring(json.is_array(json.decode('[]')))") == "true");
  CHECK(f.eval(kPrelude + "return tostring(json.is_array(json.decode('{}')))") == "false");
  CHECK(f.eval(kPrelude + "return json.decode('{\"a\":{\"b\":[10,20]}}').a.b[2]") == "20");
}

TEST_CASE("json.decode errors say what and where", "[json]") {
  LuaFixture f;
  auto dec = [&](const std::string& text) {
    return f.eval(kPrelude + "return json.decode([==[" + text + "]==])");
  };
  CHECK_THAT(dec("{\"a\": [1, 2,, 3]}"),
             Catch::StartsWith("error: json.decode: syntax error at line 1, column 13 (byte 12)"));
  CHECK_THAT(dec("{\n  \"a\": tru\n}"), Catch::Contains("at line 2, column"));
  CHECK_THAT(dec(""), Catch::Contains("incomplete JSON at line 1, column 1 (byte 0)"));
  CHECK_THAT(dec("[1] x"), Catch::Contains("extra data"));
  CHECK_THAT(dec("{\"a\" 1}"), Catch::Contains("json.decode:"));
  CHECK_THAT(f.eval(kPrelude + "return json.decode(string.rep('[', 2000))"),
             Catch::Contains("json.decode:"));
}

TEST_CASE("json.encode errors name the path", "[json]") {
  LuaFixture f;
  CHECK_THAT(enc(f, "{a = {b = {print}}}"),
             Catch::Contains("cannot encode a function at $.a.b[1]"));
  CHECK_THAT(enc(f, "{1, 2, nil, 4}"), Catch::Contains("sparse array"));
  CHECK_THAT(enc(f, "{1, x = 2}"), Catch::Contains("both string and number keys"));
  CHECK_THAT(enc(f, "{[true] = 1}"), Catch::Contains("boolean key"));
  CHECK_THAT(enc(f, "0/0"), Catch::Contains("NaN or infinity"));
  CHECK_THAT(enc(f, "{s = '\\255'}"), Catch::Contains("invalid UTF-8 in string (byte 1) at $.s"));
  CHECK_THAT(f.eval(kPrelude + "local t = {} t.t = t return json.encode(t)"),
             Catch::Contains("nesting deeper than 1000 levels"));
  CHECK_THAT(enc(f, "{}", "{empty_table = 'list'}"), Catch::Contains("empty_table must be"));
}
