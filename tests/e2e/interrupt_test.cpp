// Ctrl-C: SIGINT sent to a running script. The first one cancels every task
// where it waits (and interrupts Lua code spinning without waiting), cleanup
// runs, the process exits 130; a second one exits at once.
//
// Scripts whose tasks wait print "ready" just before they do; the test sends
// the signal once it has read that and the process sleeps in the kernel, so
// that Ctrl-C meets the tasks where they wait. (The "ready" print also sits
// inside the script's pcall, so that is where an early signal would land.)
#include <catch2/catch.hpp>

#include <signal.h>

#include <string>
#include <vector>

#include "process.hpp"

namespace {

using Catch::Matchers::Contains;
using e2e::Result;

// What the script does once it has printed "ready".
enum class Then { kWaits, kSpins };

// Starts `spritescript OPTIONS run NAME` with `source` in a fresh directory,
// waits for "ready" on its stdout (and, for a script that then waits, for the
// process to block), sends one SIGINT and returns the result.
Result interrupt_script(const std::string& name, const std::string& source,
                        Then then = Then::kWaits, std::vector<std::string> options = {}) {
  e2e::TempDir dir;
  dir.write(name, source);
  options.push_back("run");
  options.push_back(name);
  e2e::Command command = e2e::spritescript(std::move(options));
  command.cwd = dir.path();
  e2e::Child child(command);
  if (!child.wait_for_stdout("ready\n") || (then == Then::kWaits && !child.wait_until_blocked())) {
    Result r = child.wait();
    FAIL("the script never got ready to wait\n" << r.describe());
  }
  child.send_signal(SIGINT);
  return child.wait();
}

// True when some line of stderr is the runtime's report that it was interrupted.
bool reports_interrupted(const Result& r) {
  for (const std::string& line : r.err_lines()) {
    if (line.rfind("spritescript: ", 0) == 0 && line.find("interrupted") != std::string::npos) {
      return true;
    }
  }
  return false;
}

}  // namespace

TEST_CASE("Ctrl-C cancels a waiting script: its cleanup sees interrupted, exit 130",
          "[interrupt]") {
  const Result r = interrupt_script("wait.lua", R"(
local ok, err = pcall(function()
  print("ready")
  io.stdout:flush()
  sprites.sleep(60)
end)
print("cleanup " .. (sprites.error.is(err) and err.kind or tostring(err)))
io.stdout:flush()
error(err, 0)
)");
  INFO(r.describe());
  REQUIRE(r.exited);
  CHECK(r.exit_code == 130);
  CHECK_THAT(r.out, Contains("cleanup interrupted\n"));
  CHECK(reports_interrupted(r));
}

TEST_CASE("cleanup under sprites.shield runs to the end after Ctrl-C", "[interrupt]") {
  const Result r = interrupt_script("shield.lua", R"(
local ok, err = pcall(function()
  print("ready")
  io.stdout:flush()
  sprites.sleep(60)
end)
print("cleanup " .. err.kind)
sprites.shield(function()
  sprites.sleep(0.2)
  print("shield done")
end)
-- Outside the shield the cancellation applies again.
local ok2, err2 = pcall(sprites.sleep, 60)
print("after shield " .. err2.kind)
io.stdout:flush()
error(err, 0)
)");
  INFO(r.describe());
  REQUIRE(r.exited);
  CHECK(r.exit_code == 130);
  CHECK(r.out_lines() == std::vector<std::string>{"ready", "cleanup interrupted", "shield done",
                                                  "after shield interrupted"});
  CHECK(reports_interrupted(r));
}

TEST_CASE("one Ctrl-C runs the cleanup of every waiting task", "[interrupt]") {
  const Result r = interrupt_script("many.lua", R"(
local function waiter(id, before_waiting)
  return function()
    local ok, err = pcall(function()
      if before_waiting then before_waiting() end
      sprites.sleep(60)
    end)
    print("cleanup " .. id)
    io.stdout:flush()
    error(err, 0)
  end
end
sprites.spawn(waiter("child-1"))
sprites.spawn(waiter("child-2"))
sprites.spawn(function()
  sprites.spawn(waiter("grandchild"))
  waiter("child-3")()
end)
sprites.spawn(waiter("detached")):detach()
waiter("main", function()
  print("ready")
  io.stdout:flush()
end)()
)");
  INFO(r.describe());
  REQUIRE(r.exited);
  CHECK(r.exit_code == 130);
  for (const char* id : {"child-1", "child-2", "child-3", "grandchild", "detached", "main"}) {
    CHECK_THAT(r.out, Contains(std::string("cleanup ") + id + "\n"));
  }
  CHECK(reports_interrupted(r));
}

TEST_CASE("Ctrl-C interrupts Lua code spinning without waiting", "[interrupt]") {
  // jit.off(): LuaJIT checks hooks only in interpreted code.
  const Result r = interrupt_script("spin.lua", R"(
jit.off()
local ok, err = pcall(function()
  print("ready")
  io.stdout:flush()
  local n = 0
  while true do n = n + 1 end
end)
print("caught " .. (sprites.error.is(err) and err.kind or tostring(err)))
io.stdout:flush()
error(err, 0)
)",
                                    Then::kSpins);
  INFO(r.describe());
  REQUIRE(r.exited);
  CHECK(r.exit_code == 130);
  CHECK_THAT(r.out, Contains("caught interrupted\n"));
  CHECK(reports_interrupted(r));
}

TEST_CASE("a second Ctrl-C ends a JIT-compiled loop at once", "[interrupt]") {
  e2e::TempDir dir;
  // "ready" comes once the loop has run a million times: compiled by then.
  dir.write("hot.lua", R"(
jit.on()
local x = 0
while true do
  x = x + 1
  if x == 1e6 then
    print("ready")
    io.stdout:flush()
  end
end
)");
  e2e::Command command = e2e::spritescript({"run", "hot.lua"});
  command.cwd = dir.path();
  e2e::Child child(command);
  REQUIRE(child.wait_for_stdout("ready\n"));

  // Compiled code does not run hooks, so the first SIGINT may not stop it.
  child.send_signal(SIGINT);
  const bool survived_first = child.still_running_after(e2e::Millis(300));
  if (survived_first) child.send_signal(SIGINT);
  const Result r = child.wait();
  INFO(r.describe());
  REQUIRE(r.exited);
  CHECK(r.exit_code == 130);
  if (survived_first) CHECK_THAT(r.err, Contains("interrupted twice"));
}

// Every task shares the one `interrupted` error: the report for the main
// task must not name the spawn site of a child that ended with it, and with
// -v its traceback is the main task's own (it waits in the main chunk; the
// child's stack has no main chunk).
constexpr const char* kFamilyScript = R"(
sprites.spawn(function()
  sprites.sleep(60)
end)
print("ready")
io.stdout:flush()
sprites.sleep(60)
)";

TEST_CASE("the Ctrl-C report does not blame a child task", "[interrupt]") {
  const Result r = interrupt_script("family.lua", kFamilyScript);
  INFO(r.describe());
  REQUIRE(r.exited);
  CHECK(r.exit_code == 130);
  CHECK(reports_interrupted(r));
  CHECK_THAT(r.err, !Contains("in task spawned at"));
}

TEST_CASE("with -v the Ctrl-C report shows the main task's traceback", "[interrupt]") {
  const Result r = interrupt_script("family.lua", kFamilyScript, Then::kWaits, {"-v"});
  INFO(r.describe());
  REQUIRE(r.exited);
  CHECK(r.exit_code == 130);
  CHECK(reports_interrupted(r));
  CHECK_THAT(r.err, Contains("stack traceback"));
  CHECK_THAT(r.err, Contains("in main chunk"));
}
