-- Structured errors: kinds, one-line messages, tracebacks, exit codes.
local T = require "harness"
local errors = sprites.error

T.test("raise builds a structured error with a traceback", function()
  local err = T.raises("conflict", errors.raise, "conflict", "sprite exists", { sprite = "dev" })
  T.eq(err.message, "sprite exists")
  T.eq(err.sprite, "dev")
  T.eq(tostring(err), "conflict: sprite exists")
  T.match(err.traceback, "errors_test.lua:%d+")
end)

T.test("plain errors are wrapped when they leave a task", function()
  local t = sprites.spawn(function() local x = nil; return x.field end)
  local ok, err = t:pwait()
  T.eq(err.kind, "error")
  T.match(err.message, "errors_test.lua:%d+: attempt to index local 'x'")
  T.match(err.traceback, "errors_test.lua:%d+")
end)

T.test("tables with kind and message become errors; others are kept as value", function()
  local e1 = errors.wrap({ kind = "not_found", message = "gone" })
  T.ok(errors.is(e1, "not_found"))
  local payload = { 1, 2 }
  local e2 = errors.wrap(payload)
  T.eq(e2.kind, "error"); T.eq(e2.value, payload)
  T.eq(errors.wrap(e1), e1)
end)

T.test("exit codes derive from the kind", function()
  T.eq(errors.exit_code(nil), 0)
  T.eq(errors.exit_code(errors.new("error", "x")), 1)
  T.eq(errors.exit_code(errors.new("usage", "x")), 2)
  T.eq(errors.exit_code(errors.new("not_found", "x")), 4)
  T.eq(errors.exit_code(errors.new("timeout", "x")), 124)
  T.eq(errors.exit_code(errors.new("interrupted", "x")), 130)
  T.eq(errors.exit_code(errors.new("something_new", "x")), 1)
  T.eq(errors.exit_code("a string"), 1)
end)

T.test("location points at the user's code, not the library", function()
  local err = T.raises("timeout", sprites.timeout, 0.001, function() sprites.sleep(5) end)
  T.match(errors.location(err) or "", "errors_test.lua:%d+")
end)

T.done()
