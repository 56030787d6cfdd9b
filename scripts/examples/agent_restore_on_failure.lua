-- agent_restore_on_failure.lua: the minimal safe agent run.
--
-- Checkpoint the sprite, run the "agent", and if it fails (or you press
-- Ctrl-C, or it runs past its deadline) put the sprite back exactly as it
-- was. The failed state is kept as a checkpoint to look at later.
--
--   spritescript run scripts/examples/agent_restore_on_failure.lua [sprite] [fail]
--
-- With no Sprites token this runs against the local engine (it starts one).
-- Pass "fail" as the second argument to watch a restore happen.
local name, mode = ...
name = name or "agent-demo"
local wf = sprites.workflow

local s = sprites.create(name, { exist_ok = true })
s:run("mkdir -p /home/sprite/project && echo 'v1' > /home/sprite/project/VERSION", { check = true })

-- The agent: here a shell script that edits the project; a real one would
-- be `claude -p ...` or similar, with its prompt on stdin.
local agent = [[
cd /home/sprite/project
echo 'v2 (edited by the agent)' > VERSION
echo 'generated' > output.txt
]] .. (mode == "fail" and "echo 'the agent gave up' >&2; exit 1" or "echo done")

local ok, err = pcall(wf.checkpointed, s, {
  comment = "before the agent",
  keep_failed = true,
  on_progress = function(event) io.stderr:write("  ", event.type, ": ", event.message, "\n") end,
}, function(sprite)
  return sprites.timeout(600, function()
    sprite:run(agent, { check = true })
  end)
end)

local version = s:run("cat /home/sprite/project/VERSION").stdout:gsub("%s+$", "")
if ok then
  print(("the agent succeeded; VERSION is now %q"):format(version))
else
  print(("the agent failed (%s); restored to %s, VERSION is back to %q; the failed state is "
    .. "checkpoint %s"):format(err.message, err.restored_to, version, tostring(err.failed_checkpoint)))
end
