// The command line as a user meets it: commands, usage errors, exit codes by
// error kind, what reaches stdout and stderr.
#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "process.hpp"

namespace {

using Catch::Matchers::Contains;
using Catch::Matchers::Matches;
using Catch::Matchers::StartsWith;
using e2e::Result;

Result run_spritescript(std::vector<std::string> args) {
  return e2e::run(e2e::spritescript(std::move(args)));
}

// Writes `source` to NAME in a fresh directory and runs `spritescript run
// NAME ARGS...` there, so that messages name the script as just NAME.
Result run_script(const std::string& name, const std::string& source,
                  std::vector<std::string> args = {}, std::vector<std::string> options = {}) {
  e2e::TempDir dir;
  dir.write(name, source);
  std::vector<std::string> argv = std::move(options);
  argv.push_back("run");
  argv.push_back(name);
  argv.insert(argv.end(), args.begin(), args.end());
  e2e::Command command = e2e::spritescript(std::move(argv));
  command.cwd = dir.path();
  return e2e::run(command);
}

}  // namespace

// ---- commands ------------------------------------------------------------------

TEST_CASE("version prints the program name and version", "[cli]") {
  for (const char* command : {"version", "--version"}) {
    INFO("spritescript " << command);
    const Result r = run_spritescript({command});
    INFO(r.describe());
    REQUIRE(r.exited);
    CHECK(r.exit_code == 0);
    REQUIRE(r.out_lines().size() == 1);
    CHECK_THAT(r.out_lines()[0], Matches("spritescript [0-9]+\\.[0-9]+\\.[0-9]+.*"));
    CHECK(r.err.empty());
  }
}

TEST_CASE("help, -h and --help print the usage to stdout", "[cli]") {
  for (const char* command : {"help", "-h", "--help"}) {
    INFO("spritescript " << command);
    const Result r = run_spritescript({command});
    INFO(r.describe());
    CHECK(r.exit_code == 0);
    CHECK_THAT(r.out, Contains("usage:"));
    CHECK_THAT(r.out, Contains("spritescript run FILE"));
    CHECK(r.err.empty());
  }
}

TEST_CASE("no arguments prints the usage to stderr and exits 2", "[cli]") {
  const Result r = run_spritescript({});
  INFO(r.describe());
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Contains("usage:"));
  CHECK(r.out.empty());
}

// ---- usage errors ----------------------------------------------------------------

TEST_CASE("an unknown command is one line on stderr and exit 2", "[cli]") {
  const Result r = run_spritescript({"frobnicate"});
  INFO(r.describe());
  CHECK(r.exit_code == 2);
  REQUIRE(r.err_lines().size() == 1);
  CHECK_THAT(r.err_lines()[0], Contains("frobnicate"));
  CHECK(r.out.empty());
}

TEST_CASE("an unknown option is one line on stderr and exit 2", "[cli]") {
  const Result r = run_spritescript({"--frobnicate", "version"});
  INFO(r.describe());
  CHECK(r.exit_code == 2);
  REQUIRE(r.err_lines().size() == 1);
  CHECK_THAT(r.err_lines()[0], Contains("--frobnicate"));
  CHECK(r.out.empty());
}

TEST_CASE("run without a file and -e without code are usage errors", "[cli]") {
  for (const char* command : {"run", "-e"}) {
    INFO("spritescript " << command);
    const Result r = run_spritescript({command});
    INFO(r.describe());
    CHECK(r.exit_code == 2);
    CHECK(r.err_lines().size() == 1);
    CHECK(r.out.empty());
  }
}

TEST_CASE("running a script that does not exist says so in one line and exits 2", "[cli]") {
  e2e::TempDir dir;
  e2e::Command command = e2e::spritescript({"run", "missing.lua"});
  command.cwd = dir.path();
  const Result r = e2e::run(command);
  INFO(r.describe());
  CHECK(r.exit_code == 2);
  REQUIRE(r.err_lines().size() == 1);
  CHECK_THAT(r.err_lines()[0], Contains("no such script"));
  CHECK_THAT(r.err_lines()[0], Contains("missing.lua"));
}

TEST_CASE("running a directory is a usage error", "[cli]") {
  e2e::TempDir dir;
  const std::string path = dir.mkdir("scripts.lua").string();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"run", path}, std::vector<std::string>{path}}) {
    INFO("spritescript " << args[0]);
    const Result r = run_spritescript(args);
    INFO(r.describe());
    CHECK(r.exit_code == 2);
    REQUIRE(r.err_lines().size() == 1);
    CHECK_THAT(r.err_lines()[0], Contains("is a directory"));
  }
}

// ---- script errors -----------------------------------------------------------------

TEST_CASE("a syntax error is one line with file:line and exit 3", "[cli]") {
  const Result r = run_script("broken.lua", "local x = 1\nlocal y = = 2\nprint(x, y)\n");
  INFO(r.describe());
  CHECK(r.exit_code == 3);
  REQUIRE(r.err_lines().size() == 1);
  CHECK_THAT(r.err_lines()[0], Contains("broken.lua:2:"));
  CHECK(r.out.empty());
}

TEST_CASE("an uncaught error is one line with file:line, -v adds the traceback", "[cli]") {
  const std::string source =
      "local function explode()\n"
      "  error(\"boom\")\n"
      "end\n"
      "explode()\n";

  const Result plain = run_script("boom.lua", source);
  INFO(plain.describe());
  CHECK(plain.exit_code == 1);
  REQUIRE(plain.err_lines().size() == 1);
  CHECK_THAT(plain.err_lines()[0], Contains("boom.lua:2: boom"));

  const Result verbose = run_script("boom.lua", source, {}, {"-v"});
  INFO(verbose.describe());
  CHECK(verbose.exit_code == 1);
  const auto lines = verbose.err_lines();
  REQUIRE(lines.size() > 1);
  CHECK(lines[0] == plain.err_lines()[0]);
  // The traceback names the frames of the script: the caller at line 4.
  CHECK_THAT(verbose.err, Contains("stack traceback"));
  CHECK_THAT(verbose.err, Contains("boom.lua:4:"));
}

// ---- arguments ---------------------------------------------------------------------

constexpr const char* kArgsScript =
    "print('n', select('#', ...))\n"
    "print('dots', ...)\n"
    "print('arg', arg[0], arg[1], arg[2], #arg)\n";

TEST_CASE("run FILE ARGS passes the arguments in ... and arg", "[cli][args]") {
  const Result r = run_script("args.lua", kArgsScript, {"a", "b c"});
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out_lines() ==
        std::vector<std::string>{"n\t2", "dots\ta\tb c", "arg\targs.lua\ta\tb c\t2"});
}

TEST_CASE("a path ending in .lua runs like run FILE", "[cli][args]") {
  e2e::TempDir dir;
  dir.write("args.lua", kArgsScript);
  e2e::Command command = e2e::spritescript({"args.lua", "a"});
  command.cwd = dir.path();
  const Result r = e2e::run(command);
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out_lines() == std::vector<std::string>{"n\t1", "dots\ta", "arg\targs.lua\ta\tnil\t1"});
}

TEST_CASE("spritescript -e CODE ARGS passes the arguments in ...", "[cli][args]") {
  const Result r = run_spritescript({"-e", "print(select('#', ...), ...)", "x", "y"});
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "2\tx\ty\n");
}

// ---- exit codes by error kind ------------------------------------------------------

TEST_CASE("a plain successful script exits 0 with nothing on stderr", "[cli][exit]") {
  const Result r = run_script("ok.lua", "print('fine')\n");
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == "fine\n");
  CHECK(r.err.empty());
}

TEST_CASE("a not_found error exits 4", "[cli][exit]") {
  const Result r = run_script("nf.lua", "sprites.error.raise('not_found', 'no such sprite')\n");
  INFO(r.describe());
  CHECK(r.exit_code == 4);
  REQUIRE(r.err_lines().size() == 1);
  CHECK_THAT(r.err_lines()[0], StartsWith("spritescript: not_found: no such sprite"));
}

TEST_CASE("an uncaught sprites.timeout exits 124", "[cli][exit]") {
  const Result r =
      run_script("slow.lua", "sprites.timeout(0.05, function() sprites.sleep(5) end)\n");
  INFO(r.describe());
  CHECK(r.exit_code == 124);
  REQUIRE(r.err_lines().size() == 1);
  CHECK_THAT(r.err_lines()[0], StartsWith("spritescript: timeout:"));
}

TEST_CASE("an error of kind exit exits 5", "[cli][exit]") {
  const Result r = run_script("cmd.lua", "sprites.error.raise('exit', 'the command failed')\n");
  INFO(r.describe());
  CHECK(r.exit_code == 5);
  REQUIRE(r.err_lines().size() == 1);
  CHECK_THAT(r.err_lines()[0], Contains("the command failed"));
}

TEST_CASE("a table error of an unknown kind exits 1", "[cli][exit]") {
  const Result r = run_script("odd.lua", "error({ kind = 'mystery', message = 'what is this' })\n");
  INFO(r.describe());
  CHECK(r.exit_code == 1);
  REQUIRE(r.err_lines().size() == 1);
  CHECK_THAT(r.err_lines()[0], Contains("what is this"));
}

TEST_CASE("os.exit sets the exit code", "[cli][exit]") {
  const Result r = run_script("bye.lua", "print('leaving')\nos.exit(7)\nprint('not here')\n");
  INFO(r.describe());
  CHECK(r.exit_code == 7);
  CHECK(r.out == "leaving\n");
}

// The timeout belongs to the main task, which was waiting at line 3; the
// child spawned inside the block only got cancelled with it.
TEST_CASE("a timeout is reported where it happened, not as a child task's error", "[cli][exit]") {
  const Result r = run_script("block.lua",
                              "sprites.timeout(0.05, function()\n"
                              "  sprites.spawn(function() sprites.sleep(5) end)\n"
                              "  sprites.sleep(5)\n"
                              "end)\n");
  INFO(r.describe());
  CHECK(r.exit_code == 124);
  REQUIRE(r.err_lines().size() == 1);
  CHECK_THAT(r.err_lines()[0], StartsWith("spritescript: timeout:"));
  CHECK_THAT(r.err_lines()[0], Contains("block.lua:3"));
  CHECK_THAT(r.err_lines()[0], !Contains("in task spawned at"));
}

// ---- tasks ---------------------------------------------------------------------------

TEST_CASE("a child task's error surfaces in the main task waiting for it", "[cli][tasks]") {
  const Result r = run_script("child.lua",
                              "local t = sprites.spawn(function()\n"
                              "  sprites.sleep(0.01)\n"
                              "  error('child broke')\n"
                              "end)\n"
                              "t:wait()\n"
                              "print('not reached')\n");
  INFO(r.describe());
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  REQUIRE(r.err_lines().size() == 1);
  CHECK_THAT(r.err_lines()[0], Contains("child.lua:3: child broke"));
  CHECK_THAT(r.err_lines()[0], Contains("in task spawned at child.lua:1"));
}

TEST_CASE("a detached task that fails unobserved is reported and fails the run", "[cli][tasks]") {
  const Result r = run_script("detached.lua",
                              "sprites.spawn(function()\n"
                              "  sprites.sleep(0.01)\n"
                              "  error('detached broke')\n"
                              "end):detach()\n"
                              "sprites.sleep(0.2)\n"
                              "print('main done')\n");
  INFO(r.describe());
  CHECK(r.exit_code == 1);
  CHECK(r.out == "main done\n");
  CHECK_THAT(r.err, Contains("warning: a task nobody waited for failed"));
  CHECK_THAT(r.err, Contains("detached.lua:3: detached broke"));
}

TEST_CASE("waiting for an event nobody sets is a deadlock: exit 10", "[cli][tasks]") {
  const Result r = run_script("stuck.lua", "sprites.event():wait()\nprint('not reached')\n");
  INFO(r.describe());
  CHECK_FALSE(r.timed_out);
  CHECK(r.exit_code == 10);
  CHECK(r.out.empty());
  CHECK_THAT(r.err, Contains("deadlock"));
}

// The main task waits at line 5; the report must not point at the child's
// wait (line 3), which ended with the same deadlock.
TEST_CASE("a deadlock is reported where the main task waits", "[cli][tasks]") {
  const Result r = run_script("stuck.lua",
                              "local never = sprites.event()\n"
                              "sprites.spawn(function()\n"
                              "  never:wait()\n"
                              "end)\n"
                              "never:wait()\n");
  INFO(r.describe());
  CHECK(r.exit_code == 10);
  REQUIRE(r.err_lines().size() == 1);
  CHECK_THAT(r.err_lines()[0], StartsWith("spritescript: deadlock:"));
  CHECK_THAT(r.err_lines()[0], Contains("stuck.lua:5"));
  CHECK_THAT(r.err_lines()[0], !Contains("stuck.lua:3"));
}

TEST_CASE("print from many concurrent tasks loses nothing", "[cli][tasks]") {
  const Result r = run_script("many.lua",
                              "for id = 1, 100 do\n"
                              "  sprites.spawn(function()\n"
                              "    sprites.sleep(math.random() * 0.05)\n"
                              "    print('task ' .. id)\n"
                              "  end)\n"
                              "end\n");
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  const auto lines = r.out_lines();
  CHECK(lines.size() == 100);
  std::set<std::string> expected, seen(lines.begin(), lines.end());
  for (int id = 1; id <= 100; ++id) expected.insert("task " + std::to_string(id));
  CHECK(seen == expected);
}

// ---- JSON on stdin -------------------------------------------------------------------

constexpr const char* kJsonRoundTrip =
    "print(sprites.json.encode(sprites.json.decode(io.read('*a'))))";

TEST_CASE("JSON from stdin round-trips through decode and encode", "[cli][json]") {
  // One key per object: the encoder's key order is then not in question.
  const std::string document =
      R"({"sprite":[1,2.5,-3,"quote \" and \\ and \n",true,false,null,{"k":"v"},[],{}]})";
  e2e::Command command = e2e::spritescript({"-e", kJsonRoundTrip});
  command.stdin_text = document + "\n";
  const Result r = e2e::run(command);
  INFO(r.describe());
  CHECK(r.exit_code == 0);
  CHECK(r.out == document + "\n");
  CHECK(r.err.empty());
}

TEST_CASE("bad JSON on stdin fails with its line and column", "[cli][json]") {
  e2e::Command command = e2e::spritescript({"-e", kJsonRoundTrip});
  command.stdin_text = "{\"a\": 1,\n  \"b\": }\n";
  const Result r = e2e::run(command);
  INFO(r.describe());
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  REQUIRE(r.err_lines().size() == 1);
  CHECK_THAT(r.err_lines()[0], Contains("json.decode:"));
  CHECK_THAT(r.err_lines()[0], Contains("line 2"));
  CHECK_THAT(r.err_lines()[0], Contains("column"));
}
