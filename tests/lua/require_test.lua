-- require() is Lua: module top levels can wait, concurrent loads share one.
local T = require "harness"

T.test("a module's top level may wait", function()
  T.eq(require "fixtures.waiting_module", "loaded after a wait")
end)

T.test("two tasks requiring a slow module get one load", function()
  local a = sprites.spawn(require, "fixtures.slow_module")
  local b = sprites.spawn(require, "fixtures.slow_module")
  local ma, mb = a:wait(), b:wait()
  T.eq(ma, mb)
  T.eq(slow_module_loads, 1)
  T.eq(require "fixtures.slow_module", ma)
end)

T.test("a failing module raises for every requirer and is not cached", function()
  local err = T.raises("error", require, "fixtures.broken_module")
  T.match(err.message, "broken on purpose")
  T.eq(package.loaded["fixtures.broken_module"], nil)
  T.raises("error", require, "fixtures.broken_module")
end)

T.test("a require cycle is an error, not a hang", function()
  local err = T.raises("error", require, "fixtures.cycle_a")
  T.match(err.message, "require cycle")
end)

T.test("not found lists every place tried", function()
  local err = T.raises("not_found", require, "no.such.module")
  T.match(err.message, "module 'no.such.module' not found")
  T.match(err.message, "no built%-in module 'no.such.module'")
  T.match(err.message, "tests/lua/no/such/module.lua")
  T.match(err.message, "tests/lua/no/such/module/init.lua")
end)

T.test("built-ins and LuaJIT's own modules load", function()
  T.eq(require "sprites", sprites)
  T.eq(type(require "sprites.json".encode), "function")
  T.eq(type(require "ffi".cdef), "function")
  T.eq(type(require "jit".version), "string")
  T.eq(type(require "string.buffer".new), "function")
end)

T.test("require checks its argument", function()
  T.raises("usage", require, 42)
end)

T.done()
