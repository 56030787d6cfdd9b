-- demo.lua: what a spritescript workflow looks like, runnable offline.
--
-- The Sprites API arrives with the local engine and the client; this demo
-- shows the runtime they run on: many tasks on one event loop, a deadline
-- that cancels work cleanly, cleanup that must finish, and a JSON report.
--
--   spritescript run scripts/examples/demo.lua [workers]
local workers = tonumber((...)) or 8
local started = sprites.now()

-- Pretend each "sprite" runs a job of its own length.
local function job(i)
  local seconds = 0.05 + (i % 4) * 0.05
  sprites.sleep(seconds)
  return { sprite = ("ci-%02d"):format(i), seconds = seconds, ok = i % 5 ~= 0 }
end

print(("fan out: %d jobs at once"):format(workers))
local tasks = {}
for i = 1, workers do tasks[i] = sprites.spawn(job, i) end
local results = sprites.wait_all(tasks)
print(("  all %d done in %.2f s (the longest job takes 0.20 s)"):format(#results, sprites.now() - started))

print("deadline: a job that would take 10 s gets 0.1 s")
local cleaned_up = false
local ok, err = pcall(sprites.timeout, 0.1, function()
  local ok, e = pcall(sprites.sleep, 10)
  -- Cancelled work still gets to clean up, even when cleanup must wait.
  sprites.shield(function()
    sprites.sleep(0.02)
    cleaned_up = true
  end)
  error(e, 0)
end)
print(("  %s; cleanup ran: %s"):format(tostring(err), tostring(cleaned_up)))

local report = { jobs = results, failed = 0, elapsed = sprites.now() - started }
for _, r in ipairs(results) do if not r.ok then report.failed = report.failed + 1 end end
print("report:")
print(sprites.json.encode({ failed = report.failed, jobs = #report.jobs,
  first = report.jobs[1] }, { indent = 2, sort_keys = true }))
