-- fleet_report.lua: fan out over a fleet with a concurrency limit and print
-- one line per sprite (disk use, uptime, what it runs).
--
--   spritescript run scripts/examples/fleet_report.lua [prefix] [--create N] [--limit K]
--
-- --create N first makes N sprites named PREFIX1..N (so the report has
-- something to show offline); --limit caps how many are asked at once.
local prefix, create, limit = "fleet-", 0, 8
local args = { ... }
local i = 1
while i <= #args do
  if args[i] == "--create" then create = tonumber(args[i + 1]); i = i + 2
  elseif args[i] == "--limit" then limit = tonumber(args[i + 1]); i = i + 2
  else prefix = args[i]; i = i + 1 end
end

if create > 0 then
  local names = {}
  for n = 1, create do names[n] = prefix .. n end
  sprites.parallel(names, function(name) sprites.create(name, { exist_ok = true }) end, { limit = limit })
end

local fleet = sprites.list(prefix)
local started = sprites.now()
local in_flight, peak = 0, 0
local rows = sprites.parallel(fleet, function(s)
  in_flight = in_flight + 1
  peak = math.max(peak, in_flight)
  local ok, r = pcall(s.run, s, "du -sh /home/sprite 2>/dev/null | cut -f1; cut -d' ' -f1 /proc/uptime; ps -e --no-headers | wc -l",
    { timeout = 60 })
  in_flight = in_flight - 1
  if not ok then return { name = s.name, error = tostring(r) } end
  local disk, uptime, procs = r.stdout:match("(%S+)\n(%S+)\n(%d+)")
  return { name = s.name, disk = disk, uptime = tonumber(uptime), procs = tonumber(procs), seconds = r.duration }
end, { limit = limit })

print(("%-16s %8s %10s %6s %8s"):format("sprite", "home", "uptime s", "procs", "exec s"))
local failed = 0
for _, row in ipairs(rows) do
  if row.error then
    failed = failed + 1
    print(("%-16s error: %s"):format(row.name, row.error))
  else
    print(("%-16s %8s %10.1f %6d %8.3f"):format(row.name, row.disk or "?", row.uptime or 0, row.procs or 0, row.seconds))
  end
end
print(("%d sprites in %.1f s, at most %d at once, %d failed"):format(#rows, sprites.now() - started, peak, failed))
