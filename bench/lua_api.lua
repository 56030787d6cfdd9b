-- bench/lua_api.lua: the Lua half of bench/lua_api.sh: the Sprites API from
-- Lua, against the engine in SPRITES_API_URL, for comparison with the C++
-- client alone (build/bench/client_bench) in the same run.
--
--   spritescript run bench/lua_api.lua seq N | par N K | stream BYTES
-- Prints one JSON line: {"client":"lua","bench":...,"seconds":...}.
local bench, a, b = ...
local s = sprites.sprite(os.getenv("BENCH_SPRITE") or "bench")
for _ = 1, 20 do s:run { "true" } end  -- warm up, as client_bench does

local started = sprites.now()
local result = { client = "lua", bench = bench }
if bench == "seq" then
  local n = tonumber(a)
  for _ = 1, n do s:run { "true" } end
  result.n = n
elseif bench == "par" then
  local n, k = tonumber(a), tonumber(b)
  local next_i = 0
  local workers = {}
  for w = 1, k do
    workers[w] = sprites.spawn(function()
      while next_i < n do
        next_i = next_i + 1
        s:run { "true" }
      end
    end)
  end
  sprites.wait_all(workers)
  result.n, result.k = n, k
elseif bench == "stream" then
  local bytes = tonumber(a)
  local p = s:spawn { "head", "-c", tostring(bytes), "/dev/zero" }
  local got = 0
  while true do
    local piece = p:read()
    if not piece then break end
    got = got + #piece
  end
  assert(got == bytes, ("read %d bytes of %d"):format(got, bytes))
  result.bytes = bytes
else
  error("usage: lua_api.lua seq N | par N K | stream BYTES")
end
result.seconds = sprites.now() - started
print(sprites.json.encode(result))
