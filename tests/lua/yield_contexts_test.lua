-- Where can a task wait? LuaJIT cannot yield across a C call, so a wait in
-- some callbacks is impossible. This table is a regression test: a LuaJIT
-- upgrade that changes any row must be noticed (research/lua-host-anchors.md
-- §1.7). Where waiting is impossible the error is one clear line naming the
-- cause.
local T = require "harness"
local ffi = require "ffi"

local function wait() sprites.sleep(0.001) return true end

-- Each row: name, whether a wait works, and a function that waits in that
-- context and returns true when the wait completed.
local rows = {
  { "plain call", true, function() return wait() end },
  { "pcall", true, function() return select(2, pcall(wait)) end },
  { "xpcall with debug.traceback", true, function() return select(2, xpcall(wait, debug.traceback)) end },
  { "__index metamethod", true, function()
    return setmetatable({}, { __index = function() return wait() end }).x end },
  { "__call metamethod", true, function() return setmetatable({}, { __call = wait })() end },
  { "__tostring via tostring()", true, function()
    return tostring(setmetatable({}, { __tostring = function() wait() return "x" end })) == "x" end },
  { "__concat metamethod", true, function()
    local v = setmetatable({}, { __concat = function() wait() return "c" end })
    return (v .. "x") == "c" end },
  { "generic for iterator", true, function()
    local got = false
    for _ in function(_, i) if not i then wait() got = true return 1 end end do end
    return got end },
  { "loadstring'd function", true, function() return loadstring("sprites.sleep(0.001) return true")() end },
  { "user coroutine (coroutine.wrap)", true, function() return coroutine.wrap(wait)() end },
  { "user coroutine (coroutine.resume)", true, function()
    return select(2, coroutine.resume(coroutine.create(wait))) end },
  { "module top level under require", true, function() return require("fixtures.waiting_module") == "loaded after a wait" end },
  { "table.sort comparator", false, function()
    table.sort({ 3, 1, 2 }, function(a, b) wait() return a < b end) return true end, "table.sort comparator" },
  { "string.gsub callback", false, function()
    string.gsub("ab", "%w", function() wait() end) return true end, "string.gsub callback" },
  { "__gc finaliser", false, function()
    local result
    local p = newproxy(true)
    getmetatable(p).__gc = function() local ok, e = pcall(wait) result = e end
    p = nil
    collectgarbage() collectgarbage()
    error(result, 0) end, "__gc finaliser" },
  { "FFI callback", false, function()
    ffi.cdef [[void qsort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));]]
    local arr = ffi.new("int[2]", { 2, 1 })
    ffi.C.qsort(arr, 2, 4, function() wait() return 0 end) return true end, "C function" },
}

for _, row in ipairs(rows) do
  local name, works, fn, cause = row[1], row[2], row[3], row[4]
  T.test(name .. (works and ": can wait" or ": cannot wait"), function()
    local ok, result = pcall(fn)
    if works then
      T.ok(ok, "waiting should work here, got: " .. tostring(result))
      T.eq(result, true)
    else
      T.eq(ok, false, "waiting should fail here")
      T.ok(sprites.error.is(result, "usage"), "a usage error, got: " .. tostring(result))
      T.match(result.message, "cannot wait")
      T.match(result.message, cause, "the message names the cause")
      T.ok(not result.message:find("\n"), "one line")
    end
  end)
end

T.done()
