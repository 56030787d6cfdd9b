-- sprites.json from Lua: shapes that matter to API payloads.
local T = require "harness"
local json = sprites.json

T.test("round trip of an API-like document", function()
  local text = '{"name":"dev","labels":[],"url_settings":{"auth":"sprite"},"id":null,"n":3}'
  local doc = json.decode(text)
  T.eq(doc.name, "dev")
  T.eq(#doc.labels, 0)
  T.eq(doc.id, json.null)
  T.eq(json.encode(doc, { sort_keys = true }),
       '{"id":null,"labels":[],"n":3,"name":"dev","url_settings":{"auth":"sprite"}}')
end)

T.test("decoded tables behave like plain tables", function()
  local doc = json.decode('[1,2,3]')
  local sum = 0
  for _, v in ipairs(doc) do sum = sum + v end
  T.eq(sum, 6)
  doc[4] = 4
  T.eq(json.encode(doc), "[1,2,3,4]")
end)

T.test("large documents", function()
  local items = {}
  for i = 1, 10000 do items[i] = { id = i, name = "item" .. i } end
  local back = json.decode(json.encode(items))
  T.eq(#back, 10000)
  T.eq(back[9999].name, "item9999")
end)

T.test("bad input raises with a position", function()
  local ok, err = pcall(json.decode, '{"a": }')
  T.eq(ok, false)
  T.match(err, "json.decode: .* at line 1, column 7 %(byte 6%)")
end)

T.done()
