-- spritescript.scripts: script headers, parameters, sha256 (docs/cli.md,
-- "Scripts as team tools"). The command line itself: tests/cli/scripts_test.py.
local T = require "harness"
local scripts = require "spritescript.scripts"
local core = require "spritescript.core"

local HEADER = [[
#!/usr/bin/env spritescript
-- Copyright line: a plain comment, not the description.
--- Deploy a branch.
---
--- Second paragraph.
---@param target sprite the sprite
---@param branch string="main branch" which branch
---@param n integer=3
---@param ratio number? a fraction
---@param mode "fast"|"safe"="safe" how
---@param colour red|green
---@param force boolean skip checks
---@param on boolean=true default on
---@diagnostic disable: undefined-global
-- @example spritescript run deploy --colour red
local x = 1
---@param late string not in the header: after code
]]

T.test("a header is parsed from the leading comments only", function()
  local h = scripts.parse_header(HEADER)
  T.eq(h.summary, "Deploy a branch.")
  T.same_table(h.description, { "Deploy a branch.", "", "Second paragraph." })
  T.eq(#h.errors, 0)
  T.ok(h.typed and h.declared)
  T.eq(#h.params, 8)
  local by = {}
  for _, p in ipairs(h.params) do by[p.name] = p end
  T.eq(by.target.type, "sprite")
  T.eq(by.target.required, false)
  T.eq(by.branch.default, "main branch")
  T.eq(by.branch.help, "which branch")
  T.eq(by.n.default, 3)
  T.eq(by.n.required, false)
  T.eq(by.ratio.optional, true)
  T.eq(by.ratio.required, false)
  T.same_table(by.mode.choices, { "fast", "safe" })
  T.eq(by.mode.default, "safe")
  T.same_table(by.colour.choices, { "red", "green" })
  T.eq(by.colour.required, true)
  T.eq(by.force.default, false)
  T.eq(by.on.default, true)
  T.eq(by.late, nil)
  T.same_table(h.examples, { "spritescript run deploy --colour red" })
end)

T.test("scripts without a header", function()
  local h = scripts.parse_header("-- old.lua: does things\nprint(1)\n")
  T.eq(h.summary, "old.lua: does things")
  T.eq(h.declared, false)
  T.eq(h.typed, false)
  h = scripts.parse_header("print(1)\n")
  T.eq(h.summary, "")
  h = scripts.parse_header("--[[ block\n---@param x string\n]]\n")
  T.eq(h.typed, false)
end)

T.test("bad @param lines are reported with their line", function()
  local h = scripts.parse_header("---@param n int\n---@param k integer=x\n---@param m string\n---@param m number\n")
  T.eq(#h.errors, 3)
  T.match(h.errors[1], "^line 1: @param n: unknown type 'int'")
  T.match(h.errors[2], "^line 2: @param k: the default wants a number, not 'x'")
  T.match(h.errors[3], "^line 4: @param m is declared twice")
  h = scripts.parse_header("---@param n\n")
  T.match(h.errors[1], "no type")
  h = scripts.parse_header("---@param\n")
  T.match(h.errors[1], "@param wants NAME TYPE")
end)

T.test("parameters: forms, defaults, errors", function()
  local h = scripts.parse_header(HEADER)
  local function parse(argv, dot_sprite)
    return scripts.parse_params(h, argv, "deploy", { default_sprite = function() return dot_sprite end })
  end
  local p = T.ok(parse({ "--colour", "red" }, "dev"))
  T.same_table(p, { target = "dev", branch = "main branch", n = 3, mode = "safe", colour = "red",
                    force = false, on = true })
  p = T.ok(parse({ "--colour=green", "--force", "--no-on", "--n=-4", "--ratio", "0.25", "--target", "x-1" }))
  T.eq(p.colour, "green")
  T.eq(p.force, true)
  T.eq(p.on, false)
  T.eq(p.n, -4)
  T.eq(p.ratio, 0.25)
  T.eq(p.target, "x-1")
  T.eq(parse({ "--help" }), "help")
  local function fails(argv, pattern, dot_sprite)
    local value, why = parse(argv, dot_sprite)
    T.eq(value, nil, table.concat(argv, " "))
    T.match(why, pattern)
    T.match(why, "see 'spritescript run deploy %-%-help'")
    T.ok(not why:find("\n"), "one line")
  end
  fails({ "--colour", "red", "--nope" }, "unknown parameter '%-%-nope'; known: %-%-target, ")
  fails({ "--colour", "blue" }, "%-%-colour wants one of red, green, not 'blue'")
  fails({ "--colour", "red", "--n", "1.5" }, "wants an integer")
  fails({ "--colour", "red", "--force=perhaps" }, "wants true or false")
  fails({ "--colour", "red", "--no-branch" }, "unknown parameter '%-%-no%-branch'")
  fails({ "--colour" }, "%-%-colour needs a value")
  fails({}, "missing %-%-colour red|green", "dev")
  fails({ "--colour", "red" }, "missing %-%-target SPRITE", nil)
  fails({ "--colour", "red", "stray" }, "unexpected argument 'stray'")
  fails({ "-x" }, "unknown option '%-x'")
end)

T.test("usage text", function()
  local text = scripts.usage_text(scripts.parse_header(HEADER), "deploy")
  T.match(text, "^usage: spritescript run deploy %[%-%-target SPRITE%] %[%-%-branch STRING%]")
  T.match(text, " %-%-colour red|green ")
  T.match(text, "%-%-force, %-%-no%-force%s+skip checks\n")
  T.match(text, "%(default: \"main branch\"%)")
  T.match(text, "%(default: on%)")
  T.match(text, "examples:\n  spritescript run deploy %-%-colour red\n$")
end)

T.test("sha256 matches the standard test vectors", function()
  T.eq(core.sha256(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
  T.eq(core.sha256("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
  T.eq(core.sha256(("a"):rep(1000000)), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
  T.eq(core.sha256("a\0b"), core.sha256("a\0b"))
  T.ok(core.sha256("a\0b") ~= core.sha256("a"), "binary data is hashed whole")
end)

T.test("realpath", function()
  T.eq(core.realpath("/"), "/")
  local missing, why = core.realpath("/no/such/path")
  T.eq(missing, nil)
  T.match(why, "No such file")
end)

T.done()
