-- The host owns `coroutine`: a user's coroutine can wait; its yields still
-- go to whoever resumed it.
local T = require "harness"

T.test("a generator that waits between items", function()
  local gen = coroutine.wrap(function()
    for i = 1, 3 do
      sprites.sleep(0.001)
      coroutine.yield(i)
    end
  end)
  T.eq(gen(), 1); T.eq(gen(), 2); T.eq(gen(), 3)
end)

T.test("resume passes values both ways around waits", function()
  local co = coroutine.create(function(a)
    sprites.sleep(0.001)
    local b = coroutine.yield(a + 1)
    sprites.sleep(0.001)
    return b * 2
  end)
  T.same_table({ coroutine.resume(co, 1) }, { true, 2 })
  T.eq(coroutine.status(co), "suspended")
  T.same_table({ coroutine.resume(co, 5) }, { true, 10 })
  T.eq(coroutine.status(co), "dead")
end)

T.test("nested coroutines pass waits up through every level", function()
  local inner = coroutine.wrap(function() sprites.sleep(0.001); coroutine.yield("inner") end)
  local outer = coroutine.wrap(function() coroutine.yield(inner() .. "+outer") end)
  T.eq(outer(), "inner+outer")
end)

T.test("errors inside a coroutine come back from resume", function()
  local co = coroutine.create(function() sprites.sleep(0.001); error("in coroutine") end)
  local ok, err = coroutine.resume(co)
  T.eq(ok, false)
  T.match(err, "in coroutine")
  local gen = coroutine.wrap(function() error("in wrap") end)
  T.raises(nil, gen)
end)

T.test("cancellation reaches a task waiting inside a coroutine", function()
  local seen
  local t = sprites.spawn(function()
    local gen = coroutine.wrap(function() sprites.sleep(30) end)
    local ok, e = pcall(gen)
    seen = e.kind
    error(e, 0)
  end)
  sprites.sleep(0.001)
  t:cancel()
  t:pwait()
  T.eq(seen, "cancelled")
end)

T.test("coroutine.yield in a task's own body is a clear error", function()
  local err = T.raises("usage", coroutine.yield, 1)
  T.match(err.message, "not inside a coroutine")
end)

T.test("isyieldable and running behave as in Lua", function()
  T.eq(coroutine.isyieldable(), true)
  T.eq(type(coroutine.running()), "thread")
end)

T.done()
