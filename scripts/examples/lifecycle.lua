-- lifecycle.lua: a sprite's whole life in one script: create, list, exec,
-- checkpoint, list checkpoints, restore, url, destroy.
--
--   spritescript run scripts/examples/lifecycle.lua [name] [--yes]
--
-- Destroying asks for confirmation on a terminal; --yes skips the question
-- (for scripts and CI).
local name, yes = "lifecycle-demo", false
for _, a in ipairs({ ... }) do
  if a == "--yes" then yes = true else name = a end
end

local s = sprites.create(name, { exist_ok = true, labels = { "example" } })
print("created  " .. s.name .. " (" .. s:status() .. ")")

for _, x in ipairs(sprites.list(name)) do print("listed   " .. x.name .. " " .. x.info.status) end

local r = s:run("uname -sr; echo hello > /home/sprite/greeting")
print("exec     " .. r.stdout:gsub("%s+$", "") .. " (exit " .. r.code .. ")")

local cp = s:checkpoint { comment = "after the greeting" }
print("checkpt  " .. cp.id .. " " .. cp.comment)

s:run("echo changed > /home/sprite/greeting")
for _, c in ipairs(s:checkpoints()) do print("list     " .. c.id .. "  " .. c.create_time .. "  " .. c.comment) end

s:restore(cp)
print("restored " .. cp.id .. ": greeting says " .. s:run("cat /home/sprite/greeting").stdout:gsub("%s+$", ""))

print("url      " .. s:url())

local function confirmed()
  if yes then return true end
  io.write(("destroy %s and its checkpoints? [y/N] "):format(s.name))
  io.flush()
  local answer = io.read("*l")
  return answer == "y" or answer == "yes"
end
if confirmed() then
  s:delete()
  print("deleted  " .. s.name)
else
  print("kept     " .. s.name)
end
