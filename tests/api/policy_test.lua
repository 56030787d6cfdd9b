-- A sprite's policies from Lua (lua/stdlib/sprites/policy.lua) against a
-- real local engine (tests/api/run.sh starts it): the network policy's
-- sugar and the rules it sends (read back with s:policy()), clearing it,
-- s:policy_allows mirroring the engine's decision, the errors bad options
-- and invalid policies get, and the privileges and resources policies.
local T = require "harness"

local unique = 0
local function fresh(prefix)
  unique = unique + 1
  return sprites.create(("%s-%d-%d"):format(prefix, os.time() % 100000, unique))
end

-- "domain:action" or "include:name" per rule, comma separated.
local function shown(policy)
  local out = {}
  for i, r in ipairs(policy.rules) do
    out[i] = r.include and ("include:" .. r.include) or (r.domain .. ":" .. r.action)
  end
  return table.concat(out, ",")
end

T.test("the sugar sends defaults, then allows, then denies, then raw rules", function()
  local s = fresh("pol-sugar")
  T.same_table(s:policy(), { rules = {} }, "a new sprite is unrestricted")
  T.eq(sprites.json.encode(s:policy()), '{"rules":[]}', "rules encode as an array")
  local sent = s:policy {
    allow = { "github.com", "*.npmjs.org" },
    deny = { "evil.example.com" },
    defaults = true,
    rules = { { domain = "*", action = "deny" }, { domain = "api.example.com", action = "allow" } },
  }
  local expected = "include:defaults,github.com:allow,*.npmjs.org:allow,evil.example.com:deny,"
    .. "*:deny,api.example.com:allow"
  T.eq(shown(sent), expected, "what s:policy{} returns")
  T.eq(shown(s:policy()), expected, "what the engine stored")
  -- One name may be a string; defaults = false adds nothing; replaced, not merged.
  s:policy { allow = "pypi.org", defaults = false }
  T.eq(shown(s:policy()), "pypi.org:allow")
  s:policy { deny = { "a.example.com" }, allow = { "b.example.com" } }
  T.eq(shown(s:policy()), "b.example.com:allow,a.example.com:deny", "allows before denies")
  -- Cleared three ways.
  s:policy {}
  T.eq(shown(s:policy()), "")
  s:policy { allow = { "x.example.com" } }
  s:policy { rules = {} }
  T.eq(shown(s:policy()), "")
  s:policy { allow = { "x.example.com" } }
  T.same_table(s:policy(false), { rules = {} })
  T.eq(shown(s:policy()), "")
  s:delete()
end)

T.test("policy_allows mirrors the engine's decision", function()
  local s = fresh("pol-allows")
  T.eq(s:policy_allows("anything.example.org"), true, "no rules: unrestricted")

  s:policy { allow = { "github.com", "*.example.com" }, deny = { "*.bad.example.com", "Deny.Example.com" } }
  T.eq(s:policy_allows("github.com"), true, "exact")
  T.eq(s:policy_allows("GitHub.COM."), true, "case and a trailing dot ignored")
  T.eq(s:policy_allows("api.github.com"), false, "an exact rule covers only its name")
  T.eq(s:policy_allows("a.example.com"), true, "a wildcard, one level down")
  T.eq(s:policy_allows("a.b.c.example.com"), true, "a wildcard, any depth")
  T.eq(s:policy_allows("example.com"), false, "a wildcard does not cover the name itself")
  T.eq(s:policy_allows("x.bad.example.com"), false, "the longest wildcard suffix wins")
  T.eq(s:policy_allows("bad.example.com"), true, "*.bad.example.com is not bad.example.com")
  T.eq(s:policy_allows("deny.example.com"), false, "exact beats a wildcard")
  T.eq(s:policy_allows("other.org"), false, "rules and no match: denied")

  s:policy { allow = { "*" }, deny = { "tracker.example.com" } }
  T.eq(s:policy_allows("anything.org"), true, "*")
  T.eq(s:policy_allows("tracker.example.com"), false, "exact beats *")

  s:policy { allow = { "same.example.com", "*.tie.example.com" }, deny = { "same.example.com", "*.tie.example.com" } }
  T.eq(s:policy_allows("same.example.com"), false, "the same name both ways: deny wins")
  T.eq(s:policy_allows("x.tie.example.com"), false, "the same wildcard both ways: deny wins")

  s:policy { defaults = true, allow = { "mine.example.com" }, deny = { "github.com", "*" } }
  T.eq(s:policy_allows("mine.example.com"), true, "an explicit allow stands beside defaults")
  T.eq(s:policy_allows("github.com"), false, "an exact deny beats anything defaults hold")
  local allowed, why = s:policy_allows("registry.npmjs.org")
  T.eq(allowed, nil, "* deny with defaults: a default may be more specific")
  T.eq(why, "decided by include defaults")
  s:policy { defaults = true }
  allowed, why = s:policy_allows("pypi.org")
  T.eq(allowed, nil, "no explicit rule matches")
  T.eq(why, "decided by include defaults")
  s:delete()
end)

T.test("bad options and invalid policies are usage errors; the old policy stays", function()
  local s = fresh("pol-bad")
  s:policy { allow = { "github.com" } }
  local err = T.raises("usage", s.policy, s, { alow = { "github.com" } })
  T.match(err.message, "unknown option 'alow'")
  T.match(err.message, "known: allow, defaults, deny, preset, rules")
  err = T.raises("usage", s.policy, s, { "github.com" })
  T.match(err.message, "expected an options table")
  err = T.raises("usage", s.policy, s, { defaults = "yes" })
  T.match(err.message, "defaults must be a boolean")
  err = T.raises("usage", s.policy, s, { allow = { "a.com", 42 } })
  T.match(err.message, "allow%[2%] must be a domain name")
  err = T.raises("usage", s.policy, s, { deny = { x = "a.com" } })
  T.match(err.message, "deny must be an array")
  err = T.raises("usage", s.policy, s, { rules = { domain = "a.com", action = "allow" } })
  T.match(err.message, "rules must be an array")
  err = T.raises("usage", s.policy, s, { rules = { { domain = "a.com", verdict = "allow" } } })
  T.match(err.message, "rule 1 has an unknown field 'verdict'")
  err = T.raises("usage", s.policy, s, "github.com")
  T.match(err.message, "options must be a table")
  -- The engine's refusals: its words, and nothing changed.
  err = T.raises("usage", s.policy, s, { rules = { { domain = "a.com", include = "defaults" } } })
  T.ok(err.message:find("set network policy of " .. s.name, 1, true), err.message)
  T.match(err.message, "both")
  T.eq(err.status, 400)
  T.eq(err.code, "invalid_policy")
  T.raises("usage", s.policy, s, { rules = { { domain = "a.com", action = "block" } } })
  T.raises("usage", s.policy, s, { rules = { { include = "everything" } } })
  T.raises("usage", s.policy, s, { deny = { "not a domain" } })
  T.eq(shown(s:policy()), "github.com:allow")
  T.raises("usage", s.policy_allows, s, 42)
  T.raises("usage", s.policy_allows, s, "")
  local ghost = sprites.sprite("no-such-sprite")
  T.raises("not_found", ghost.policy, ghost)
  T.raises("not_found", ghost.policy, ghost, { allow = { "a.com" } })
  T.raises("not_found", ghost.policy_allows, ghost, "a.com")
  T.raises("not_found", ghost.privileges, ghost)
  T.raises("not_found", ghost.resources, ghost, false)
  s:delete()
end)

T.test("named presets put defaults first and a catch-all last", function()
  local s = fresh("pol-presets")
  s:policy { preset = "defaults", allow = { "mine.example.com" } }
  T.eq(shown(s:policy()), "include:defaults,mine.example.com:allow,*:deny")
  s:policy { preset = "locked", allow = { "github.com" } }
  T.eq(shown(s:policy()), "github.com:allow,*:deny")
  T.eq(s:policy_allows("pypi.org"), false, "locked: only the allows")
  s:policy { preset = "open", deny = { "*.tracker.example" } }
  T.eq(shown(s:policy()), "*.tracker.example:deny,*:allow")
  T.eq(s:policy_allows("a.tracker.example"), false)
  T.eq(s:policy_allows("example.org"), true)
  s:policy { preset = "open" }
  T.eq(#s:policy().rules, 0, "open alone: unrestricted, no rules")
  local err = T.raises("usage", s.policy, s, { preset = "tight" })
  T.match(err.message, "preset is")
end)

T.test("privileges and resources: set, read back, reset", function()
  local s = fresh("pol-priv")
  local initial = s:privileges()
  T.eq(type(initial), "table")
  local stored = s:privileges { profile = "minimal", devices = { "/dev/fuse" }, no_new_privileges = true }
  T.same_table(stored, { profile = "minimal", devices = { "/dev/fuse" }, no_new_privileges = true })
  T.same_table(s:privileges(), stored, "read back")
  -- Replaced: what is not given takes its default.
  T.same_table(s:privileges { profile = "standard" }, { profile = "standard", devices = {}, no_new_privileges = false })
  T.eq(s:privileges(false), nil)
  T.same_table(s:privileges(), initial, "back to the default")
  local err = T.raises("usage", s.privileges, s, { profile = "root" })
  T.match(err.message, "profile is")
  err = T.raises("usage", s.privileges, s, { noNewPrivileges = true })
  T.match(err.message, "unknown option 'noNewPrivileges'")
  T.raises("usage", s.privileges, s, { devices = "/dev/fuse" })
  T.raises("usage", s.privileges, s, { no_new_privileges = "yes" })

  local default = s:resources()
  T.eq(type(default), "table")
  T.same_table(s:resources { memory = { limit_mb = 512, autoscale = true } },
    { memory = { limit_mb = 512, autoscale = true } })
  T.same_table(s:resources(), { memory = { limit_mb = 512, autoscale = true } }, "read back")
  T.eq(s:resources(false), nil)
  T.same_table(s:resources(), default, "back to the default")
  err = T.raises("usage", s.resources, s, { cpu = 2 })
  T.match(err.message, "unknown option 'cpu'")
  err = T.raises("usage", s.resources, s, { memory = { limit = 512 } })
  T.match(err.message, "unknown option 'limit'")
  T.raises("usage", s.resources, s, { memory = { limit_mb = -1 } })
  T.raises("usage", s.resources, s, { memory = { limit_mb = 1.5 } })
  T.raises("usage", s.resources, s, { memory = { autoscale = "on" } })
  s:delete()
end)

T.done()
