-- spritescript.cli.policy: `spritescript policy`, a sprite's network policy
-- (docs/cli.md, "Network"), on s:policy and s:policy_allows
-- (lua/stdlib/sprites/policy.lua):
--   policy [show] [-s NAME] [--json]
--   policy allow DOMAIN... | deny DOMAIN...   add rules to the current policy
--   policy set FILE|-                         replace it with {"rules":[...]}
--   policy reset                              no rules: unrestricted
--   policy check DOMAIN                       exit 0 allowed, 1 denied, 3 up to the defaults list
local json = require "sprites.json"
local errors = require "sprites.error"
local util = require "spritescript.cli.util"

local M = {}

local USAGE = "policy [show|allow DOMAIN...|deny DOMAIN...|set FILE|-|reset|check DOMAIN] [-s NAME] [--json]"

local spec_common = { flags = { json = true }, options = { sprite = "string" }, short = { s = "sprite" } }

local function spec(usage, min, max)
  return { flags = spec_common.flags, options = spec_common.options, short = spec_common.short,
           min = min, max = max, usage = usage }
end

-- How the engine compares names: lowercase, without a trailing dot.
local function normalize(domain)
  domain = domain:lower()
  if domain:sub(-1) == "." then domain = domain:sub(1, -2) end
  return domain
end

local function is_catch_all(rule)
  return rule.domain == "*"
end

-- The policy as a table of rules, in the order the engine stores them,
-- and one line saying what a name no rule matches gets.
local function show(name, policy, as_json)
  if as_json then
    util.print_json({ sprite = name, rules = json.array(policy.rules) })
    return
  end
  local rules = policy.rules
  if #rules == 0 then
    io.stdout:write("unrestricted: ", name, " has no rules, every name is allowed\n")
    return
  end
  local rows, has_catch_all, has_defaults = {}, false, false
  for i, rule in ipairs(rules) do
    if rule.include then
      has_defaults = true
      rows[i] = { tostring(i), util.colour("cyan", "include " .. rule.include), "allow (the server's list)" }
    else
      has_catch_all = has_catch_all or is_catch_all(rule)
      local action = rule.action or "?"
      rows[i] = { tostring(i), rule.domain or "?",
                  util.colour(action == "allow" and "green" or "red", action) }
    end
  end
  util.print_table({ "#", "DOMAIN", "ACTION" }, rows)
  if not has_catch_all then
    io.stdout:write(util.colour("dim", "names no rule matches are denied" ..
                    (has_defaults and " (unless on the defaults list)" or "")), "\n")
  end
end

-- Adds a rule per domain with `action` to the current rules: a rule for
-- the same name with the other action is replaced (the engine would deny
-- a name listed both ways), one with the same action is kept as it is.
-- New rules go before a final "*" so that it stays last.
local function add_rules(s, action, domains)
  local rules = s:policy().rules
  local was_empty = #rules == 0
  local kept = {}
  local wanted = {}
  for _, d in ipairs(domains) do
    if d == "" then util.usage("a domain cannot be empty") end
    wanted[normalize(d)] = true
  end
  local present, changed = {}, was_empty
  for _, rule in ipairs(rules) do
    local d = rule.domain and normalize(rule.domain)
    if d and wanted[d] and rule.action ~= action then
      changed = true
      io.stderr:write(("policy: %s was %s; now %s\n"):format(d, rule.action or "?", action))
    else
      if d and wanted[d] then present[d] = true end
      kept[#kept + 1] = rule
    end
  end
  local tail = nil
  if #kept > 0 and is_catch_all(kept[#kept]) then
    tail = table.remove(kept)
  end
  for _, d in ipairs(domains) do
    local n = normalize(d)
    if not present[n] then
      present[n] = true
      kept[#kept + 1] = { domain = d, action = action }
      changed = true
    end
  end
  if tail then kept[#kept + 1] = tail end
  if was_empty then
    if action == "allow" then
      io.stderr:write("policy: ", s.name, " was unrestricted; it is now an allow-list: ",
                      "names no rule allows are denied\n")
    else
      -- A policy with rules denies what no rule matches: without a final
      -- "*" allow, one deny would block everything.
      kept[#kept + 1] = { domain = "*", action = "allow" }
      io.stderr:write("policy: ", s.name, " was unrestricted; added \"*\" allow so that only ",
                      "the denied names are blocked\n")
    end
  end
  if not changed then return { rules = rules } end
  s:policy { rules = kept }
  return s:policy()  -- as the engine stored it
end

-- The rules of a policy file ({"rules": [...]}, or the bare array).
local function read_policy_file(path)
  local text
  if path == "-" then
    text = io.stdin:read("*a") or ""
  else
    local f, why = io.open(path, "rb")
    if not f then util.usage("cannot read " .. path .. ": " .. (why:match(": (.*)$") or why)) end
    text = f:read("*a") or ""
    f:close()
  end
  local where = path == "-" and "stdin" or path
  local ok, doc = pcall(json.decode, text)
  if not ok then
    util.usage(("%s is not JSON: %s"):format(where, tostring(doc):gsub("^json%.decode: ", "")))
  end
  local rules = doc
  if type(doc) == "table" and not json.is_array(doc) then rules = doc.rules end
  if type(rules) ~= "table" or (next(rules) ~= nil and #rules == 0) then
    util.usage(("%s must hold {\"rules\": [...]}"):format(where))
  end
  return rules, where
end

local function set_rules(s, rules, where)
  local ok, err = pcall(s.policy, s, { rules = rules })
  if not ok then
    err = errors.wrap(err)
    -- Say which file the refused rules came from; keep the engine's words.
    local message = (err.message or tostring(err)):gsub("^sprite:policy: ", "")
    err.message = where .. ": " .. message
    error(err, 0)
  end
  return s:policy()
end

local function check(s, domain, as_json)
  local allowed, why = s:policy_allows(domain)
  local verdict = allowed == true and "allowed" or allowed == false and "denied" or "undecided"
  if as_json then
    util.print_json({ sprite = s.name, domain = domain, allowed = allowed == nil and json.null or allowed,
                      decision = verdict, reason = why or json.null })
  elseif allowed == true then
    io.stdout:write(util.colour("green", "allowed"), "\n")
  elseif allowed == false then
    io.stdout:write(util.colour("red", "denied"), "\n")
  else
    io.stdout:write(util.colour("yellow", why), ": allowed only if ", domain,
                    " is on the server's list of development hosts\n")
  end
  if allowed == true then return 0 end
  if allowed == false then return 1 end
  return 3
end

function M.policy(argv)
  local sub = argv[1]
  local rest = {}
  if sub == nil or sub:sub(1, 1) == "-" then
    sub, rest = "show", argv
  else
    for i = 2, #argv do rest[#rest + 1] = argv[i] end
  end
  if sub == "show" then
    local opts = util.parse(rest, spec("policy show [-s NAME] [--json]", 0, 0))
    local s = util.sprite(opts)
    show(s.name, s:policy(), opts.json)
  elseif sub == "allow" or sub == "deny" then
    local opts, domains = util.parse(rest, spec("policy " .. sub .. " DOMAIN... [-s NAME] [--json]", 1))
    local s = util.sprite(opts)
    show(s.name, add_rules(s, sub, domains), opts.json)
  elseif sub == "set" then
    local opts, args = util.parse(rest, spec("policy set FILE|- [-s NAME] [--json]", 1, 1))
    local s = util.sprite(opts)
    local rules, where = read_policy_file(args[1])
    show(s.name, set_rules(s, rules, where), opts.json)
  elseif sub == "reset" then
    local opts = util.parse(rest, spec("policy reset [-s NAME] [--json]", 0, 0))
    local s = util.sprite(opts)
    s:policy(false)
    show(s.name, { rules = {} }, opts.json)
  elseif sub == "check" then
    local opts, args = util.parse(rest, spec("policy check DOMAIN [-s NAME] [--json]", 1, 1))
    local s = util.sprite(opts)
    return check(s, args[1], opts.json)
  else
    util.usage("unknown subcommand '" .. sub .. "'; usage: spritescript " .. USAGE)
  end
  return 0
end

return M
