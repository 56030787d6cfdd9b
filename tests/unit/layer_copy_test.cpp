// The layer copier behind checkpoints (src/engine/layer_copy.*), on real
// directories: what a copy preserves, reuse by hard link of unchanged files
// only, and the manifest's format.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "engine/layer_copy.hpp"

namespace fs = std::filesystem;
namespace lc = spritescript::engine::layer_copy;

namespace {

struct Dir {
  Dir() {
    char pattern[] = "/tmp/layer-copy-test.XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~Dir() { fs::remove_all(path); }
  int open(const std::string& sub) const {
    return ::open((path / sub).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  }
  fs::path path;
};

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct stat stat_of(const fs::path& p) {
  struct stat st {};
  ::lstat(p.c_str(), &st);
  return st;
}

}  // namespace

TEST_CASE("layer copy: contents, modes, links, fifos and xattrs, and reuse of unchanged files only",
          "[layer_copy]") {
  Dir d;
  fs::create_directories(d.path / "src" / "home" / "sprite");
  write(d.path / "src/home/sprite/a", "alpha");
  write(d.path / "src/etc/conf", "conf");
  ::chmod((d.path / "src/etc/conf").c_str(), 0600);
  fs::create_hard_link(d.path / "src/home/sprite/a", d.path / "src/home/sprite/a2");
  fs::create_symlink("/home/sprite/a", d.path / "src/home/sprite/link");
  ::mkfifo((d.path / "src/home/sprite/pipe").c_str(), 0644);
  ::setxattr((d.path / "src/etc").c_str(), "user.overlay.opaque", "y", 1, 0);
  write(d.path / "src/.marker", "skip me");
  for (int i = 0; i < 300; ++i) write(d.path / "src/many" / std::to_string(i), std::to_string(i));

  fs::create_directory(d.path / "one");
  lc::Manifest record;
  lc::Options options;
  options.record = &record;
  options.record_before_ns = INT64_MAX;
  options.skip_top = [](std::string_view name) { return name == ".marker"; };
  int src = d.open("src"), one = d.open("one");
  auto stats = lc::copy_tree(src, one, options);
  CHECK(stats.files == 303);  // a, a2, conf and 300 more
  CHECK(read(d.path / "one/home/sprite/a") == "alpha");
  CHECK(read(d.path / "one/many/299") == "299");
  CHECK((stat_of(d.path / "one/etc/conf").st_mode & 07777) == 0600);
  CHECK(stat_of(d.path / "one/home/sprite/a").st_ino ==
        stat_of(d.path / "one/home/sprite/a2").st_ino);
  CHECK(fs::read_symlink(d.path / "one/home/sprite/link") == "/home/sprite/a");
  CHECK(S_ISFIFO(stat_of(d.path / "one/home/sprite/pipe").st_mode));
  char value[4] = {};
  CHECK(::getxattr((d.path / "one/etc").c_str(), "user.overlay.opaque", value, 4) == 1);
  CHECK_FALSE(fs::exists(d.path / "one/.marker"));
  CHECK(stat_of(d.path / "one/etc/conf").st_mtim.tv_sec ==
        stat_of(d.path / "src/etc/conf").st_mtim.tv_sec);

  // A change to one file; the next copy links the rest to the first copy.
  write(d.path / "src/home/sprite/a", "changed");
  fs::create_directory(d.path / "two");
  auto text = lc::serialize(record);
  auto parsed = lc::parse_manifest(text);
  CHECK(parsed == record);
  int reuse = d.open("one"), two = d.open("two");
  lc::Options again;
  again.reuse_root = reuse;
  again.reused_from = &parsed;
  auto second = lc::copy_tree(src, two, again);
  CHECK(second.files_reused >= 300);
  CHECK(read(d.path / "two/home/sprite/a") == "changed");
  CHECK(read(d.path / "one/home/sprite/a") == "alpha");  // the first copy is untouched
  CHECK(stat_of(d.path / "two/many/7").st_ino == stat_of(d.path / "one/many/7").st_ino);
  CHECK(stat_of(d.path / "two/home/sprite/a").st_ino !=
        stat_of(d.path / "one/home/sprite/a").st_ino);
  for (int fd : {src, one, reuse, two}) ::close(fd);
}

TEST_CASE("layer copy: the manifest keeps any path and stops at a torn end", "[layer_copy]") {
  lc::Manifest m;
  m["home/sprite/with\nnewline and space"] = {1, 2, 3, 4};
  m["usr/local/bin/tool"] = {5, 6, 7, 8};
  auto text = lc::serialize(m);
  CHECK(lc::parse_manifest(text) == m);
  auto torn = lc::parse_manifest(text.substr(0, text.size() - 3));
  CHECK(torn.size() == 1);
  CHECK(lc::parse_manifest("garbage").empty());
}
