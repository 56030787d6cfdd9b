// `sprites.json`: JSON for Lua on Boost.JSON.
//
// decode streams Boost.JSON's SAX parser straight onto the Lua stack (no DOM
// in between) and reports errors with line, column and byte offset. Decoded
// arrays and objects carry marker metatables so that an empty `[]` or `{}`
// encodes back to the same thing; json.array / json.object set the markers
// on tables built by hand. json.null is a light userdata sentinel.
// Boost.JSON itself is compiled once, in src/proto/json_impl.cpp.
#include <boost/json/basic_parser_impl.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "bindings/bindings.hpp"
#include "bindings/lua_helpers.hpp"

namespace json = boost::json;

namespace spritescript::bindings {
namespace {

constexpr const char* kArrayMeta = "sprites.json.array";
constexpr const char* kObjectMeta = "sprites.json.object";
constexpr int kMaxDepth = 1000;

void push_null(lua_State* L) {
  lua_pushlightuserdata(L, nullptr);
}
bool is_null(lua_State* L, int idx) {
  return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == nullptr;
}

// ---- decode ------------------------------------------------------------------
class LuaBuilder {
 public:
  // Names required by json::basic_parser. NOLINTBEGIN(readability-identifier-naming)
  constexpr static std::size_t max_object_size = std::size_t(-1);
  constexpr static std::size_t max_array_size = std::size_t(-1);
  constexpr static std::size_t max_key_size = std::size_t(-1);
  constexpr static std::size_t max_string_size = std::size_t(-1);
  // NOLINTEND(readability-identifier-naming)

  explicit LuaBuilder(lua_State* L) : L_(L) {}

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }

  bool on_array_begin(json::error_code& ec) { return open(ec, true); }
  bool on_array_end(std::size_t, json::error_code&) { return close(); }
  bool on_object_begin(json::error_code& ec) { return open(ec, false); }
  bool on_object_end(std::size_t, json::error_code&) { return close(); }

  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    push_text(s);
    return add_value();
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    text_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    push_text(s);  // stays on the stack until its value arrives
    return true;
  }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    return push_number(static_cast<lua_Number>(i));
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    return push_number(static_cast<lua_Number>(u));
  }
  bool on_double(double d, json::string_view, json::error_code&) { return push_number(d); }
  bool on_bool(bool b, json::error_code&) {
    lua_pushboolean(L_, b);
    return add_value();
  }
  bool on_null(json::error_code&) {
    push_null(L_);
    return add_value();
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  struct Frame {
    bool is_array;
    int count;
  };

  bool open(json::error_code& ec, bool is_array) {
    if (!lua_checkstack(L_, 4)) {
      ec = json::error::too_deep;
      return false;
    }
    lua_newtable(L_);
    luaL_getmetatable(L_, is_array ? kArrayMeta : kObjectMeta);
    lua_setmetatable(L_, -2);
    frames_.push_back({is_array, 0});
    return true;
  }
  bool close() {
    frames_.pop_back();
    return add_value();
  }
  void push_text(json::string_view last) {
    if (text_.empty()) {
      lua_pushlstring(L_, last.data(), last.size());
    } else {
      text_.append(last.data(), last.size());
      lua_pushlstring(L_, text_.data(), text_.size());
      text_.clear();
    }
  }
  bool push_number(lua_Number n) {
    lua_pushnumber(L_, n);
    return add_value();
  }
  // The value on top of the stack goes into the enclosing container.
  bool add_value() {
    if (frames_.empty()) return true;  // the document itself
    Frame& f = frames_.back();
    if (f.is_array) {
      lua_rawseti(L_, -2, ++f.count);
    } else {
      lua_rawset(L_, -3);  // table, key, value
    }
    return true;
  }

  lua_State* L_;
  std::vector<Frame> frames_;
  std::string text_;
};

// Parses `text` onto the Lua stack; returns an error message, or "" when the
// document is on top of the stack. No Lua error is raised while the parser
// (a C++ object) is alive.
std::string decode_onto_stack(lua_State* L, std::string_view text) {
  json::parse_options options;
  options.max_depth = kMaxDepth;
  json::basic_parser<LuaBuilder> parser(options, L);
  json::error_code ec;
  std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (!ec && used < text.size()) ec = json::error::extra_data;
  if (!ec) return {};
  // Position of the failure: line and column are 1-based, the byte 0-based.
  std::size_t at = std::min(used, text.size());
  int line = 1, column = 1;
  for (std::size_t i = 0; i < at; ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "json.decode: " + ec.message() + " at line " + std::to_string(line) + ", column " +
         std::to_string(column) + " (byte " + std::to_string(at) + ")";
}

int l_decode(lua_State* L) {
  std::string_view text = lua::check_string(L, 1);
  lua_settop(L, 1);
  std::string error = decode_onto_stack(L, text);
  if (error.empty()) return 1;
  lua_settop(L, 0);
  throw std::runtime_error(error);
}

// ---- encode ------------------------------------------------------------------
struct EncodeOptions {
  int indent = 0;  // 0: compact
  bool sort_keys = false;
  bool empty_as_array = false;
};

class Encoder {
 public:
  Encoder(lua_State* L, EncodeOptions options) : L_(L), options_(options) {}

  std::string run(int idx) {
    encode(idx, 0);
    return std::move(out_);
  }

 private:
  using PathPart = std::variant<std::string, lua_Number>;

  [[noreturn]] void fail(const std::string& what) {
    std::string where = "$";
    for (const auto& part : path_) {
      if (const auto* key = std::get_if<std::string>(&part)) {
        where += "." + *key;
      } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "[%.14g]", std::get<lua_Number>(part));
        where += buf;
      }
    }
    throw std::runtime_error("json.encode: " + what + " at " + where);
  }

  void newline(int depth) {
    if (!options_.indent) return;
    out_ += '\n';
    out_.append(static_cast<std::size_t>(depth) * static_cast<std::size_t>(options_.indent), ' ');
  }

  void encode(int idx, int depth) {
    switch (lua_type(L_, idx)) {
      case LUA_TNIL:
        out_ += "null";
        return;
      case LUA_TBOOLEAN:
        out_ += lua_toboolean(L_, idx) ? "true" : "false";
        return;
      case LUA_TNUMBER:
        number(lua_tonumber(L_, idx));
        return;
      case LUA_TSTRING: {
        size_t len = 0;
        const char* s = lua_tolstring(L_, idx, &len);
        string({s, len});
        return;
      }
      case LUA_TTABLE:
        table(idx, depth);
        return;
      case LUA_TLIGHTUSERDATA:
        if (is_null(L_, idx)) {
          out_ += "null";
          return;
        }
        [[fallthrough]];
      default:
        fail(std::string("cannot encode a ") + luaL_typename(L_, idx));
    }
  }

  void number(lua_Number n) {
    if (!std::isfinite(n)) fail("cannot encode NaN or infinity");
    char buf[64];
    const bool integral = n == std::floor(n) && std::fabs(n) < 9007199254740992.0;
    const std::to_chars_result r =
        integral ? std::to_chars(buf, buf + sizeof buf, static_cast<long long>(n))
                 : std::to_chars(buf, buf + sizeof buf, n);
    out_.append(buf, r.ptr);
  }

  void string(std::string_view s) {
    static const char* hex = "0123456789abcdef";
    out_ += '"';
    for (std::size_t i = 0; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      switch (c) {
        case '"':
          out_ += "\\\"";
          continue;
        case '\\':
          out_ += "\\\\";
          continue;
        case '\n':
          out_ += "\\n";
          continue;
        case '\r':
          out_ += "\\r";
          continue;
        case '\t':
          out_ += "\\t";
          continue;
        case '\b':
          out_ += "\\b";
          continue;
        case '\f':
          out_ += "\\f";
          continue;
        default:
          break;
      }
      if (c < 0x20) {
        out_ += "\\u00";
        out_ += hex[c >> 4];
        out_ += hex[c & 15];
      } else if (c < 0x80) {
        out_ += static_cast<char>(c);
      } else {
        std::size_t n = utf8_sequence_length(s, i);
        if (n == 0) fail("invalid UTF-8 in string (byte " + std::to_string(i + 1) + ")");
        out_.append(s.substr(i, n));
        i += n - 1;
      }
    }
    out_ += '"';
  }

  // Length of the valid UTF-8 sequence starting at s[i], or 0.
  static std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = at(i);
    std::size_t n;
    unsigned min;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2, cp = c & 0x1F, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3, cp = c & 0x0F, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (i + n > s.size()) return 0;
    for (std::size_t k = 1; k < n; ++k) {
      if ((at(i + k) & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (at(i + k) & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
  }

  enum class Shape { kArray, kObject, kEmpty };

  // Decides array or object: a marker metatable says so; otherwise keys
  // 1..n without holes make an array and string keys an object.
  Shape shape_of(int idx, int* length) {
    if (lua_getmetatable(L_, idx)) {
      luaL_getmetatable(L_, kArrayMeta);
      bool array = lua_rawequal(L_, -1, -2);
      lua_pop(L_, 1);
      luaL_getmetatable(L_, kObjectMeta);
      bool object = lua_rawequal(L_, -1, -2);
      lua_pop(L_, 2);
      if (array) {
        *length = static_cast<int>(lua_objlen(L_, idx));
        return Shape::kArray;
      }
      if (object) return Shape::kObject;
    }
    int count = 0;
    lua_Number max_index = 0;
    bool has_string = false, has_number = false;
    lua_pushnil(L_);
    while (lua_next(L_, idx)) {
      lua_pop(L_, 1);
      ++count;
      if (lua_type(L_, -1) == LUA_TSTRING) {
        has_string = true;
      } else if (lua_type(L_, -1) == LUA_TNUMBER) {
        lua_Number k = lua_tonumber(L_, -1);
        if (k < 1 || k != std::floor(k)) {
          lua_pop(L_, 1);
          fail("cannot encode a table with a non-integer number key");
        }
        has_number = true;
        max_index = std::max(max_index, k);
      } else {
        std::string type = luaL_typename(L_, -1);
        lua_pop(L_, 1);
        fail("cannot encode a table with a " + type + " key");
      }
    }
    if (count == 0) return Shape::kEmpty;
    if (has_string && has_number) {
      fail(
          "cannot encode a table with both string and number keys (use json.object and string "
          "keys)");
    }
    if (has_string) return Shape::kObject;
    if (max_index != count) fail("cannot encode a sparse array (holes between 1 and its length)");
    *length = count;
    return Shape::kArray;
  }

  void table(int idx, int depth) {
    if (depth >= kMaxDepth) fail("nesting deeper than 1000 levels (a cycle?)");
    if (!lua_checkstack(L_, 8)) fail("out of Lua stack");
    idx = idx < 0 ? lua_gettop(L_) + idx + 1 : idx;
    int length = 0;
    Shape shape = shape_of(idx, &length);
    if (shape == Shape::kEmpty) {
      out_ += options_.empty_as_array ? "[]" : "{}";
      return;
    }
    if (shape == Shape::kArray) {
      if (length == 0) {
        out_ += "[]";
        return;
      }
      out_ += '[';
      for (int i = 1; i <= length; ++i) {
        if (i > 1) out_ += ',';
        newline(depth + 1);
        path_.emplace_back(static_cast<lua_Number>(i));
        lua_rawgeti(L_, idx, i);
        encode(-1, depth + 1);
        lua_pop(L_, 1);
        path_.pop_back();
      }
      newline(depth);
      out_ += ']';
      return;
    }
    object(idx, depth);
  }

  std::string key_text(int key_idx) {
    if (lua_type(L_, key_idx) == LUA_TSTRING) {
      size_t len = 0;
      const char* s = lua_tolstring(L_, key_idx, &len);
      return {s, len};
    }
    if (lua_type(L_, key_idx) == LUA_TNUMBER) {  // only in json.object tables
      std::string saved = std::move(out_);
      out_.clear();
      number(lua_tonumber(L_, key_idx));
      std::swap(saved, out_);
      return saved;
    }
    fail(std::string("cannot encode a table with a ") + luaL_typename(L_, key_idx) + " key");
  }

  void member(int idx, const std::string& key, bool first, int depth) {
    if (!first) out_ += ',';
    newline(depth + 1);
    string(key);
    out_ += options_.indent ? ": " : ":";
    path_.emplace_back(key);
    encode(idx, depth + 1);
    path_.pop_back();
  }

  void object(int idx, int depth) {
    out_ += '{';
    bool first = true;
    if (options_.sort_keys || options_.indent) {
      std::vector<std::string> keys;
      lua_newtable(L_);  // key text -> original key
      int map = lua_gettop(L_);
      lua_pushnil(L_);
      while (lua_next(L_, idx)) {
        lua_pop(L_, 1);
        std::string text = key_text(-1);
        lua_pushlstring(L_, text.data(), text.size());
        lua_pushvalue(L_, -2);
        lua_rawset(L_, map);
        keys.push_back(std::move(text));
      }
      std::sort(keys.begin(), keys.end());
      for (const std::string& text : keys) {
        lua_pushlstring(L_, text.data(), text.size());
        lua_rawget(L_, map);
        lua_rawget(L_, idx);
        member(-1, text, first, depth);
        lua_pop(L_, 1);
        first = false;
      }
      lua_pop(L_, 1);
    } else {
      lua_pushnil(L_);
      while (lua_next(L_, idx)) {
        std::string text = key_text(-2);
        member(-1, text, first, depth);
        lua_pop(L_, 1);
        first = false;
      }
    }
    if (!first) newline(depth);
    out_ += '}';
  }

  lua_State* L_;
  EncodeOptions options_;
  std::string out_;
  std::vector<PathPart> path_;
};

EncodeOptions encode_options(lua_State* L, int idx) {
  EncodeOptions o;
  if (lua_isnoneornil(L, idx)) return o;
  luaL_checktype(L, idx, LUA_TTABLE);
  lua_getfield(L, idx, "indent");
  if (lua_isnumber(L, -1)) {
    o.indent = std::clamp(static_cast<int>(lua_tointeger(L, -1)), 0, 16);
  } else if (lua_toboolean(L, -1)) {
    o.indent = 2;
  }
  lua_getfield(L, idx, "sort_keys");
  o.sort_keys = lua_toboolean(L, -1);
  lua_getfield(L, idx, "empty_table");
  if (!lua_isnil(L, -1)) {
    std::string_view v = lua::check_string(L, -1);
    if (v != "array" && v != "object") {
      luaL_error(L, R"(json.encode: empty_table must be "array" or "object")");
    }
    o.empty_as_array = v == "array";
  }
  lua_pop(L, 3);
  return o;
}

int l_encode(lua_State* L) {
  luaL_checkany(L, 1);
  EncodeOptions options = encode_options(L, 2);
  lua_settop(L, 1);
  std::string text = Encoder(L, options).run(1);
  lua::push(L, text);
  return 1;
}

// json.array(t) / json.object(t): mark a table's JSON shape; returns t.
template <const char* const* Meta>
int l_mark(lua_State* L) {
  if (lua_isnoneornil(L, 1)) {
    lua_settop(L, 0);
    lua_newtable(L);
  }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_getmetatable(L, *Meta);
  lua_setmetatable(L, 1);
  return 1;
}
const char* const kArrayMetaName = kArrayMeta;
const char* const kObjectMetaName = kObjectMeta;

int l_is_array(lua_State* L) {
  bool result = false;
  if (lua_istable(L, 1) && lua_getmetatable(L, 1)) {
    luaL_getmetatable(L, kArrayMeta);
    result = lua_rawequal(L, -1, -2);
  }
  lua_pushboolean(L, result);
  return 1;
}

}  // namespace

void open_json(lua_State* L) {
  lua::StackGuard guard(L);
  for (const char* name : {kArrayMeta, kObjectMeta}) {
    luaL_newmetatable(L, name);
    lua_pushstring(L, name == kArrayMeta ? "array" : "object");
    lua_setfield(L, -2, "__jsontype");
    lua_pop(L, 1);
  }
  static const luaL_Reg functions[] = {
      {"encode", lua::guarded<l_encode>}, {"decode", lua::guarded<l_decode>},
      {"array", l_mark<&kArrayMetaName>}, {"object", l_mark<&kObjectMetaName>},
      {"is_array", l_is_array},           {nullptr, nullptr}};
  lua_getfield(L, LUA_REGISTRYINDEX, "_LOADED");
  lua_newtable(L);
  luaL_register(L, nullptr, functions);
  push_null(L);
  lua_setfield(L, -2, "null");
  lua_setfield(L, -2, "sprites.json");
  lua_pop(L, 1);
}

}  // namespace spritescript::bindings
