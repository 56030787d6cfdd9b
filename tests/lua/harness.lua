-- A tiny test harness for the Lua tests (tests/lua/*_test.lua). Each test
-- runs as its own task with a time limit, so a test that hangs or leaves
-- children behind fails on its own instead of stalling the file.
--
--   local T = require "harness"
--   T.test("name", function() T.eq(1 + 1, 2) end)
--   T.done()   -- prints "N passed, M failed"; raises (exit 1) on failure
local M = {}

local tests = {}
local TIME_LIMIT = 20

function M.test(name, fn)
  tests[#tests + 1] = { name = name, fn = fn }
end

local function fail(msg, level)
  error(msg, (level or 1) + 1)
end

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  return tostring(v)
end

function M.eq(actual, expected, what)
  if actual ~= expected then
    fail(("%sexpected %s, got %s"):format(what and (what .. ": ") or "", show(expected), show(actual)), 2)
  end
end

function M.ok(value, what)
  if not value then fail((what or "expected a true value") .. ", got " .. show(value), 2) end
  return value
end

function M.match(s, pattern, what)
  if type(s) ~= "string" or not s:find(pattern) then
    fail(("%sexpected %s to match %q"):format(what and (what .. ": ") or "", show(s), pattern), 2)
  end
end

-- Deep equality for plain tables.
local function same(a, b)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end
M.same = same

function M.same_table(actual, expected, what)
  if not same(actual, expected) then
    fail((what or "tables differ") .. ": got " .. sprites.json.encode(actual, { sort_keys = true }), 2)
  end
end

-- M.raises(kind, fn, ...) -> the error. kind nil accepts any error.
function M.raises(kind, fn, ...)
  local ok, err = pcall(fn, ...)
  if ok then fail("expected an error" .. (kind and (" of kind " .. kind) or ""), 2) end
  if kind and not sprites.error.is(err, kind) then
    fail(("expected an error of kind %s, got %s"):format(kind, show(err)), 2)
  end
  return err
end

-- Waits (polling every `interval` seconds, default 0.05) until check() is
-- true; fails naming `what` after `seconds`.
function M.eventually(seconds, check, what, interval)
  local deadline = sprites.now() + seconds
  while not check() do
    if sprites.now() > deadline then fail("timed out waiting for " .. what, 2) end
    sprites.sleep(interval or 0.05)
  end
end

function M.done()
  local passed, failed = 0, 0
  for _, t in ipairs(tests) do
    local task = sprites.spawn(function() return sprites.timeout(TIME_LIMIT, t.fn) end)
    local ok, err = task:pwait()
    if ok then
      passed = passed + 1
      print("ok     " .. t.name)
    else
      failed = failed + 1
      print("FAILED " .. t.name .. "\n       " .. tostring(err))
      if sprites.error.is(err) and err.traceback then print(err.traceback) end
    end
  end
  print(("%d passed, %d failed"):format(passed, failed))
  -- Return normally on success (no os.exit: the state closes cleanly, which
  -- the sanitizer build checks for leaks); raise on failure, exit code 1.
  if failed > 0 or passed == 0 then
    error(sprites.error.new("error", ("%d of %d tests failed"):format(failed, passed + failed)))
  end
end

return M
