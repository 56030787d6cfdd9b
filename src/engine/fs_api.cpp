#include "engine/fs_api.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <linux/openat2.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <utility>
#include <vector>

#include "engine/api.hpp"
#include "engine/blocking.hpp"
#include "engine/fleet.hpp"
#include "engine/store.hpp"
#include "proto/values.hpp"

namespace json = boost::json;

namespace spritescript::engine {
namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kChunk = std::size_t{1} << 20;      // file bodies move in 1 MiB pieces
constexpr std::size_t kSendChunk = std::size_t{4} << 20;  // fs/read: one HTTP chunk each
constexpr std::size_t kMaxEntries = 200'000;  // a list or walk larger than this is refused
constexpr int kMaxSymlinkHops = 40;           // as the kernel's MAXSYMLINKS
constexpr std::size_t kMaxWatches = 8192;     // inotify watches per subscription
constexpr const char* kDefaultWorkingDir = "/home/sprite";  // spec §16 item 32

// ---- errors -----------------------------------------------------------------

// A filesystem error as the API reports it (spec §10.1):
// {"error": text, "code": "ENOENT", "path": "/abs"} with its status.
struct FsError {
  int status;
  std::string code;
  std::string text;
  std::string path;
};

std::string errno_text(int err) {
  switch (err) {
    case ENOENT:
      return "no such file or directory";
    case EEXIST:
      return "file exists";
    case ENOTEMPTY:
      return "directory not empty";
    case ENOTDIR:
      return "not a directory";
    case EISDIR:
      return "is a directory";
    case EACCES:
      return "permission denied";
    case EPERM:
      return "operation not permitted";
    case EROFS:
      return "read-only file system (the sprite's / and /.sprite are read-only; write under "
             "/home, /root, /tmp, /etc, /usr, /opt, /var, /srv, /mnt or /media)";
    case ELOOP:
      return "too many levels of symbolic links, or a /proc magic link (never followed)";
    case EXDEV:
      return "invalid cross-device link";
    case EBUSY:
      return "device or resource busy (a mount point)";
    case ENAMETOOLONG:
      return "file name too long";
    case ENOSPC:
      return "no space left on device";
    default: {
      std::string s = std::strerror(err);
      if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
      return s;
    }
  }
}

FsError errno_error(int err, const std::string& path) {
  switch (err) {
    case ENOENT:
      return {404, "ENOENT", errno_text(err), path};
    case EEXIST:
      return {409, "EEXIST", errno_text(err), path};
    case ENOTEMPTY:
      return {409, "ENOTEMPTY", errno_text(err), path};
    case EBUSY:
      return {409, "EBUSY", errno_text(err), path};
    case ENOTDIR:
      return {400, "ENOTDIR", errno_text(err), path};
    case EISDIR:
      return {400, "EISDIR", errno_text(err), path};
    case EINVAL:
    case ELOOP:
    case EXDEV:
    case ENAMETOOLONG:
      return {400, "EINVAL", errno_text(err), path};
    case EACCES:
    case EROFS:
      return {403, "EACCES", errno_text(err), path};
    case EPERM:
      return {403, "EPERM", errno_text(err), path};
    default:
      return {500, "EIO", errno_text(err), path};
  }
}

[[noreturn]] void fail(int err, const std::string& path) {
  throw errno_error(err, path);
}

[[noreturn]] void invalid(std::string text, const std::string& path = "") {
  throw FsError{400, "EINVAL", std::move(text), path};
}

HttpResponse error_response(const FsError& e) {
  json::object o;
  o["error"] = e.text;
  o["code"] = e.code;
  o["path"] = e.path;
  return {e.status, json::serialize(o)};
}

HttpResponse json_response(const json::object& o) {
  return {200, json::serialize(o)};
}

// ---- descriptors and paths --------------------------------------------------

class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  explicit operator bool() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// The path of an open descriptor in the engine's own /proc: reopening or
// watching through it reaches exactly the inode already resolved.
std::string proc_fd(int fd) {
  return "/proc/self/fd/" + std::to_string(fd);
}

// openat2 inside the sprite's root: `path` is absolute (as the sprite sees
// it); `..` stops at the root, absolute symlinks start from it, and /proc
// magic links are refused. -1 with errno on failure.
int open_in_root(int root, const std::string& path, std::uint64_t flags, mode_t mode = 0) {
  open_how how{};
  how.flags = flags | O_CLOEXEC;
  how.mode = (flags & (O_CREAT | O_TMPFILE)) != 0 ? mode : 0;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  for (int attempt = 0;; ++attempt) {
    long fd = ::syscall(SYS_openat2, root, path.c_str(), &how, sizeof how);
    // EAGAIN: a concurrent rename raced the `..` check; the kernel asks to retry.
    if (fd < 0 && errno == EAGAIN && attempt < 100) continue;
    return static_cast<int>(fd);
  }
}

Fd open_or_fail(int root, const std::string& path, std::uint64_t flags) {
  int fd = open_in_root(root, path, flags);
  if (fd < 0) fail(errno, path);
  return Fd(fd);
}

// `path` made absolute against `working_dir` and cleaned lexically, as Go's
// filepath.Join does ("a/../b" is "b"; ".." above / is /).
std::string absolute_path(const std::string& path, const std::string& working_dir) {
  if (path.empty()) invalid("a path is required");
  if (path.find('\0') != std::string::npos) invalid("the path contains a NUL byte");
  std::string joined;
  if (path.front() == '/') {
    joined = path;
  } else {
    std::string wd = working_dir.empty() ? kDefaultWorkingDir : working_dir;
    if (wd.find('\0') != std::string::npos) invalid("workingDir contains a NUL byte");
    if (wd.front() != '/') wd.insert(0, "/");
    joined = wd + "/" + path;
  }
  std::string out = std::filesystem::path(joined).lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out.empty()) out = "/";
  return out;
}

std::string join(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

std::string parent_of(const std::string& abs) {
  auto slash = abs.rfind('/');
  return slash == 0 ? "/" : abs.substr(0, slash);
}

std::string base_of(const std::string& abs) {
  return abs.substr(abs.rfind('/') + 1);
}

// A path's parent directory, open (O_PATH), and its last component.
struct Parent {
  Fd dir;
  std::string name;
  std::string path;  // the absolute path of the whole thing
};

// Creates the missing directories of `dir` (mode 0755), each one with
// mkdirat() in its parent as resolved inside the root.
void make_parents(int root, const std::string& dir) {
  Fd current = open_or_fail(root, "/", O_PATH | O_DIRECTORY);
  std::string prefix;
  std::size_t at = 1;
  while (at < dir.size()) {
    std::size_t end = dir.find('/', at);
    if (end == std::string::npos) end = dir.size();
    std::string name = dir.substr(at, end - at);
    prefix += "/" + name;
    at = end + 1;
    int fd = open_in_root(root, prefix, O_PATH | O_DIRECTORY);
    if (fd < 0 && errno == ENOENT) {
      if (::mkdirat(current.get(), name.c_str(), 0755) != 0 && errno != EEXIST) {
        fail(errno, prefix);
      }
      fd = open_in_root(root, prefix, O_PATH | O_DIRECTORY);
    }
    if (fd < 0) fail(errno, prefix);
    current = Fd(fd);
  }
}

Parent open_parent(int root, const std::string& abs, bool create = false) {
  if (abs == "/") invalid("the sprite's root directory cannot be used here", abs);
  std::string dir = parent_of(abs);
  int fd = open_in_root(root, dir, O_PATH | O_DIRECTORY);
  if (fd < 0 && errno == ENOENT && create) {
    make_parents(root, dir);
    fd = open_in_root(root, dir, O_PATH | O_DIRECTORY);
  }
  if (fd < 0) fail(errno, abs);
  return {Fd(fd), base_of(abs), abs};
}

std::optional<struct stat> lstat_at(int dir, const std::string& name) {
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return std::nullopt;
  return st;
}

std::string read_link_at(int dir, const std::string& name, const std::string& path) {
  std::string target(4096, '\0');
  ssize_t n = ::readlinkat(dir, name.c_str(), target.data(), target.size());
  if (n < 0) fail(errno, path);
  target.resize(static_cast<std::size_t>(n));
  return target;
}

// Follows symbolic links in the last component of `abs` (each resolved in
// the root) to the path a write should replace: "link -> file" writes file.
std::string follow_last_links(int root, std::string abs) {
  for (int hop = 0; hop < kMaxSymlinkHops; ++hop) {
    if (abs == "/") return abs;
    int dir = open_in_root(root, parent_of(abs), O_PATH | O_DIRECTORY);
    if (dir < 0) return abs;  // the caller reports the parent's error
    Fd parent(dir);
    auto st = lstat_at(parent.get(), base_of(abs));
    if (!st || !S_ISLNK(st->st_mode)) return abs;
    std::string target = read_link_at(parent.get(), base_of(abs), abs);
    abs = absolute_path(target, parent_of(abs));
  }
  fail(ELOOP, abs);
}

std::string mode_string(mode_t mode) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// An octal mode string ("0644", "755"); nullopt when absent.
std::optional<mode_t> parse_mode(const std::optional<std::string>& text) {
  if (!text) return std::nullopt;
  unsigned value = 0;
  const char* begin = text->data();
  const char* end = begin + text->size();
  auto [ptr, ec] = std::from_chars(begin, end, value, 8);
  if (text->empty() || ec != std::errc() || ptr != end || value > 07777) {
    invalid("mode must be an octal string such as 0644, got '" + *text + "'");
  }
  return static_cast<mode_t>(value);
}

const char* type_of(mode_t mode) {
  if (S_ISDIR(mode)) return "directory";
  if (S_ISLNK(mode)) return "symlink";
  return "file";
}

json::object entry_json(const std::string& name, const std::string& path, const struct stat& st) {
  json::object o;
  o["name"] = name;
  o["path"] = path;
  o["type"] = type_of(st.st_mode);
  o["size"] = static_cast<std::int64_t>(st.st_size);
  o["mode"] = mode_string(st.st_mode);
  auto t = std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::seconds(st.st_mtim.tv_sec) + std::chrono::nanoseconds(st.st_mtim.tv_nsec)));
  o["modTime"] = proto::format_rfc3339(t);
  o["isDir"] = S_ISDIR(st.st_mode);
  return o;
}

// The entries of an open directory (names only, no . and ..). Takes `dir`.
std::vector<std::string> read_names(Fd dir, const std::string& path) {
  DIR* d = ::fdopendir(dir.get());
  if (!d) fail(errno, path);
  dir.release();
  std::vector<std::string> names;
  errno = 0;
  while (dirent* e = ::readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
    if (names.size() > kMaxEntries) {
      ::closedir(d);
      invalid("the directory has more than " + std::to_string(kMaxEntries) + " entries", path);
    }
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) fail(err, path);
  std::sort(names.begin(), names.end());
  return names;
}

// A subdirectory opened for reading its entries, never through a symlink.
Fd open_subdir(int parent, const std::string& name, const std::string& path) {
  int fd = ::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) fail(errno, path);
  return Fd(fd);
}

// ---- JSON bodies --------------------------------------------------------------

json::object parse_body(const std::string& body) {
  if (body.empty()) return {};
  json::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) invalid("the request body is not a JSON object");
  return std::move(v.as_object());
}

std::optional<std::string> string_member(const json::object& o, const char* key) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return std::nullopt;
  if (!v->is_string()) invalid(std::string(key) + " must be a string");
  return std::string(v->as_string());
}

bool bool_member(const json::object& o, const char* key, bool fallback) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) return fallback;
  if (v->is_bool()) return v->as_bool();
  if (v->is_string()) {
    if (auto b = proto::parse_query_bool(v->as_string())) return *b;
  }
  invalid(std::string(key) + " must be true or false");
}

bool query_bool(const proto::Target& target, std::string_view key, bool fallback) {
  auto v = target.param(key);
  if (!v) return fallback;
  auto b = proto::parse_query_bool(*v);
  if (!b) invalid(std::string(key) + " must be true or false, got '" + *v + "'");
  return *b;
}

// ---- list -------------------------------------------------------------------

struct ListRequest {
  std::string path, working_dir, pattern;
  bool recursive = false;
};

void list_walk(int dir_fd, const std::string& dir_path, const std::string& rel,
               const ListRequest& req, json::array& out, std::size_t& visited) {
  Fd dir(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir) fail(errno, dir_path);
  for (const std::string& name : read_names(std::move(dir), dir_path)) {
    if (++visited > kMaxEntries) {
      invalid("more than " + std::to_string(kMaxEntries) + " entries: list a smaller tree",
              dir_path);
    }
    auto st = lstat_at(dir_fd, name);
    if (!st) continue;  // removed meanwhile
    const std::string path = join(dir_path, name);
    std::string relative = rel;
    if (!relative.empty()) relative += '/';
    relative += name;
    bool match = req.pattern.empty() ||
                 (req.pattern.find('/') != std::string::npos
                      ? ::fnmatch(req.pattern.c_str(), relative.c_str(), FNM_PATHNAME) == 0
                      : ::fnmatch(req.pattern.c_str(), name.c_str(), 0) == 0);
    if (match) out.push_back(entry_json(name, path, *st));
    if (req.recursive && S_ISDIR(st->st_mode)) {
      int sub = ::openat(dir_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) continue;  // vanished or unreadable: skip it
      Fd subdir(sub);
      list_walk(subdir.get(), path, relative, req, out, visited);
    }
  }
}

json::object do_list(int root, const ListRequest& req) {
  const std::string abs = absolute_path(req.path, req.working_dir);
  json::array entries;
  std::optional<struct stat> self;
  if (abs != "/") {
    Parent p = open_parent(root, abs);
    self = lstat_at(p.dir.get(), p.name);
    if (!self) fail(errno, abs);
  }
  // A directory (also through a symlink) lists its children; anything else
  // is the one entry (spec §10.4).
  int fd = open_in_root(root, abs, O_PATH | O_DIRECTORY);
  if (fd >= 0) {
    Fd dir(fd);
    std::size_t visited = 0;
    list_walk(dir.get(), abs, "", req, entries, visited);
  } else if (errno == ENOTDIR || (errno == ENOENT && self && S_ISLNK(self->st_mode))) {
    entries.push_back(entry_json(base_of(abs), abs, *self));
  } else {
    fail(errno, abs);
  }
  json::object o;
  o["path"] = abs;
  o["count"] = entries.size();
  o["entries"] = std::move(entries);
  return o;
}

// ---- delete -----------------------------------------------------------------

void remove_tree(int parent, const std::string& name, const std::string& path,
                 json::array& deleted) {
  deleted.emplace_back(path);
  Fd dir = open_subdir(parent, name, path);
  for (const std::string& child : read_names(Fd(::dup(dir.get())), path)) {
    const std::string child_path = join(path, child);
    auto st = lstat_at(dir.get(), child);
    if (!st) continue;
    if (S_ISDIR(st->st_mode)) {
      remove_tree(dir.get(), child, child_path, deleted);
    } else {
      if (::unlinkat(dir.get(), child.c_str(), 0) != 0 && errno != ENOENT) fail(errno, child_path);
      deleted.emplace_back(child_path);
    }
    if (deleted.size() > 10 * kMaxEntries) invalid("too many entries to delete at once", path);
  }
  if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0) fail(errno, path);
}

json::object do_delete(int root, const std::string& path, const std::string& working_dir,
                       bool recursive) {
  const std::string abs = absolute_path(path, working_dir);
  if (abs == "/") invalid("the sprite's root directory cannot be deleted", abs);
  Parent p = open_parent(root, abs);
  auto st = lstat_at(p.dir.get(), p.name);
  if (!st) fail(errno, abs);
  json::array deleted;
  if (!S_ISDIR(st->st_mode)) {
    if (::unlinkat(p.dir.get(), p.name.c_str(), 0) != 0) fail(errno, abs);
    deleted.emplace_back(abs);
  } else if (!recursive) {
    if (::unlinkat(p.dir.get(), p.name.c_str(), AT_REMOVEDIR) != 0) {
      int err = errno == EEXIST ? ENOTEMPTY : errno;
      if (err == ENOTEMPTY) {
        throw FsError{409, "ENOTEMPTY", "directory not empty (pass recursive=true to delete it)",
                      abs};
      }
      fail(err, abs);
    }
    deleted.emplace_back(abs);
  } else {
    remove_tree(p.dir.get(), p.name, abs, deleted);
  }
  json::object o;
  o["count"] = deleted.size();
  o["deleted"] = std::move(deleted);
  return o;
}

// ---- copy -------------------------------------------------------------------

struct CopyState {
  bool preserve = false;
  json::array copied;
  std::uint64_t total_bytes = 0;
};

void copy_bytes(int from, int to, const std::string& path) {
  bool plain = false;  // copy_file_range refused: read and write
  std::vector<char> buffer;
  for (;;) {
    if (!plain) {
      ssize_t n = ::copy_file_range(from, nullptr, to, nullptr, kChunk * 16, 0);
      if (n > 0) continue;
      if (n == 0) return;
      if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP &&
          errno != EPERM) {
        fail(errno, path);
      }
      plain = true;
      buffer.resize(kChunk);
    }
    ssize_t n = ::read(from, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(errno, path);
    if (n == 0) return;
    for (ssize_t at = 0; at < n;) {
      ssize_t w = ::write(to, buffer.data() + at, static_cast<std::size_t>(n - at));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) fail(errno, path);
      at += w;
    }
  }
}

void set_attrs(int fd, const struct stat& st, bool preserve) {
  if (preserve) {
    (void)::fchown(fd, st.st_uid, st.st_gid);  // best effort: ids the sprite cannot map stay ours
    ::fchmod(fd, st.st_mode & 07777);
    const timespec times[2] = {st.st_atim, st.st_mtim};
    ::futimens(fd, times);
  } else {
    ::fchmod(fd, st.st_mode & 0777);
  }
}

void copy_entry(int src_dir, const std::string& src_name, const std::string& src_path, int dst_dir,
                const std::string& dst_name, const std::string& dst_path, CopyState& state) {
  auto st = lstat_at(src_dir, src_name);
  if (!st) fail(errno, src_path);
  if (state.copied.size() > kMaxEntries) invalid("too many entries to copy at once", src_path);
  if (S_ISDIR(st->st_mode)) {
    if (::mkdirat(dst_dir, dst_name.c_str(), 0700) != 0 && errno != EEXIST) fail(errno, dst_path);
    Fd src = open_subdir(src_dir, src_name, src_path);
    Fd dst = open_subdir(dst_dir, dst_name, dst_path);
    state.copied.push_back(json::object{{"source", src_path}, {"dest", dst_path}});
    for (const std::string& child : read_names(Fd(::dup(src.get())), src_path)) {
      copy_entry(src.get(), child, join(src_path, child), dst.get(), child, join(dst_path, child),
                 state);
    }
    set_attrs(dst.get(), *st, state.preserve);
  } else if (S_ISLNK(st->st_mode)) {
    std::string target = read_link_at(src_dir, src_name, src_path);
    ::unlinkat(dst_dir, dst_name.c_str(), 0);  // cp replaces what is there
    if (::symlinkat(target.c_str(), dst_dir, dst_name.c_str()) != 0) fail(errno, dst_path);
    state.copied.push_back(json::object{{"source", src_path}, {"dest", dst_path}});
  } else if (S_ISREG(st->st_mode)) {
    Fd src(::openat(src_dir, src_name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (!src) fail(errno, src_path);
    Fd dst(::openat(dst_dir, dst_name.c_str(),
                    O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!dst) fail(errno, dst_path);
    copy_bytes(src.get(), dst.get(), dst_path);
    set_attrs(dst.get(), *st, state.preserve);
    state.total_bytes += static_cast<std::uint64_t>(st->st_size);
    state.copied.push_back(json::object{{"source", src_path}, {"dest", dst_path}});
  } else if (S_ISFIFO(st->st_mode)) {
    if (::mkfifoat(dst_dir, dst_name.c_str(), st->st_mode & 0777) != 0 && errno != EEXIST) {
      fail(errno, dst_path);
    }
    state.copied.push_back(json::object{{"source", src_path}, {"dest", dst_path}});
  }
  // Devices and sockets are not copied (as cp -r without --copy-contents skips nothing, but
  // a sprite cannot make device nodes anyway).
}

struct CopyRequest {
  std::string source, dest, working_dir;
  bool recursive = false, preserve = false;
};

json::object do_copy(int root, const CopyRequest& req) {
  const std::string src = absolute_path(req.source, req.working_dir);
  std::string dst = absolute_path(req.dest, req.working_dir);
  Parent sp = open_parent(root, src);
  auto st = lstat_at(sp.dir.get(), sp.name);
  if (!st) fail(errno, src);
  // cp: a destination that is a directory receives the source inside it.
  if (int d = open_in_root(root, dst, O_PATH | O_DIRECTORY); d >= 0) {
    ::close(d);
    dst = join(dst, sp.name);
  }
  if (S_ISDIR(st->st_mode)) {
    if (!req.recursive) {
      throw FsError{400, "EISDIR", "is a directory (pass recursive=true to copy it)", src};
    }
    if (dst == src || dst.starts_with(src + "/")) {
      invalid("cannot copy a directory into itself", dst);
    }
  } else if (dst == src) {
    invalid("source and dest are the same file", dst);
  }
  Parent dp = open_parent(root, dst);
  CopyState state;
  state.preserve = req.preserve;
  copy_entry(sp.dir.get(), sp.name, src, dp.dir.get(), dp.name, dst, state);
  json::object o;
  o["count"] = state.copied.size();
  o["copied"] = std::move(state.copied);
  o["totalBytes"] = state.total_bytes;
  return o;
}

// ---- rename -----------------------------------------------------------------

json::object do_rename(int root, const std::string& source, const std::string& dest,
                       const std::string& working_dir) {
  const std::string src = absolute_path(source, working_dir);
  const std::string dst = absolute_path(dest, working_dir);
  Parent sp = open_parent(root, src);
  if (!lstat_at(sp.dir.get(), sp.name)) fail(errno, src);
  Parent dp = open_parent(root, dst);
  if (::renameat(sp.dir.get(), sp.name.c_str(), dp.dir.get(), dp.name.c_str()) != 0) {
    int err = errno;
    if (err != EXDEV) fail(err, err == ENOENT ? dst : src);
    // Another mount of the sprite (/home to /tmp): copy, then delete, as mv does.
    CopyState state;
    state.preserve = true;
    copy_entry(sp.dir.get(), sp.name, src, dp.dir.get(), dp.name, dst, state);
    auto st = lstat_at(sp.dir.get(), sp.name);
    json::array ignored;
    if (st && S_ISDIR(st->st_mode)) {
      remove_tree(sp.dir.get(), sp.name, src, ignored);
    } else if (::unlinkat(sp.dir.get(), sp.name.c_str(), 0) != 0) {
      fail(errno, src);
    }
  }
  json::object o;
  o["source"] = src;
  o["dest"] = dst;
  return o;
}

// ---- chmod and chown --------------------------------------------------------

// Applies `change(fd_of_entry_or_parent, name, path, stat)` to `path` and,
// when recursive, to everything below it (symlinks are not followed below).
using Change = std::function<void(int dir, const std::string& name, const std::string& path,
                                  const struct stat& st)>;

void walk_change(int dir, const std::string& name, const std::string& path, const Change& change,
                 std::size_t& count) {
  auto st = lstat_at(dir, name);
  if (!st) return;
  if (++count > 10 * kMaxEntries) invalid("too many entries to change at once", path);
  change(dir, name, path, *st);
  if (!S_ISDIR(st->st_mode)) return;
  int fd = ::openat(dir, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return;
  Fd sub(fd);
  Fd reading(::openat(sub.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!reading) fail(errno, path);
  for (const std::string& child : read_names(std::move(reading), path)) {
    walk_change(sub.get(), child, join(path, child), change, count);
  }
}

// The target of chmod/chown itself, through symlinks (as chmod(1) does), then
// its tree without following symlinks.
void apply_change(int root, const std::string& abs, bool recursive, const Change& change) {
  Fd target = open_or_fail(root, abs, O_PATH);
  struct stat st {};
  if (::fstat(target.get(), &st) != 0) fail(errno, abs);
  change(target.get(), "", abs, st);
  if (!recursive || !S_ISDIR(st.st_mode)) return;
  Fd reading(::openat(target.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!reading) fail(errno, abs);
  std::size_t count = 0;
  for (const std::string& child : read_names(std::move(reading), abs)) {
    walk_change(target.get(), child, join(abs, child), change, count);
  }
}

json::object do_chmod(int root, const std::string& path, const std::string& working_dir,
                      mode_t mode, bool recursive) {
  const std::string abs = absolute_path(path, working_dir);
  json::array affected;
  Change change = [&](int dir, const std::string& name, const std::string& p,
                      const struct stat& st) {
    if (S_ISLNK(st.st_mode)) return;  // a link's own mode means nothing
    // chmod through the resolved descriptor: fchmodat cannot take an O_PATH one.
    int rc = name.empty() ? ::chmod(proc_fd(dir).c_str(), mode)
                          : ::fchmodat(dir, name.c_str(), mode, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) fail(errno, p);
    affected.push_back(json::object{{"path", p}, {"mode", mode_string(mode)}});
  };
  apply_change(root, abs, recursive, change);
  json::object o;
  o["count"] = affected.size();
  o["affected"] = std::move(affected);
  return o;
}

// User and group ids as the sprite sees them, and as the engine must pass
// them. A root engine maps ids 0-65535 to themselves; a rootless one is the
// sprite's root and nothing else maps (docs/engine.md, Users).
struct IdMap {
  bool identity = ::geteuid() == 0;
  uid_t host_uid = ::geteuid();
  gid_t host_gid = ::getegid();

  std::int64_t to_host_uid(std::int64_t id, const std::string& path) const {
    if (id < 0) return -1;
    if (identity && id > 65535) invalid("uid/gid out of range (0-65535)", path);
    if (identity) return id;
    if (id != 0) {
      throw FsError{403, "EPERM",
                    "operation not permitted: the engine runs rootless, so only uid/gid 0 "
                    "exists in the sprite",
                    path};
    }
    return host_uid;
  }
  std::int64_t to_host_gid(std::int64_t id, const std::string& path) const {
    if (id < 0) return -1;
    if (identity || id != 0) return to_host_uid(id, path);  // the same range, the same refusal
    return host_gid;
  }
  std::int64_t from_host_uid(uid_t id) const {
    if (identity) return id;
    return id == host_uid ? 0 : 65534;
  }
  std::int64_t from_host_gid(gid_t id) const {
    if (identity) return id;
    return id == host_gid ? 0 : 65534;
  }
};

// Looks `name` up in the sprite's /etc/passwd or /etc/group (third field).
std::optional<std::int64_t> lookup_id(int root, const std::string& file, const std::string& name) {
  int fd = open_in_root(root, file, O_RDONLY);
  if (fd < 0) return std::nullopt;
  Fd f(fd);
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(f.get(), buf, sizeof buf);
    if (n <= 0 || text.size() > (std::size_t{16} << 20)) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + at, end - at);
    at = end + 1;
    auto c1 = line.find(':');
    if (c1 == std::string_view::npos || line.substr(0, c1) != name) continue;
    auto c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    auto c3 = line.find(':', c2 + 1);
    std::string_view field = line.substr(c2 + 1, c3 == std::string_view::npos ? c3 : c3 - c2 - 1);
    std::int64_t id = 0;
    if (std::from_chars(field.data(), field.data() + field.size(), id).ec == std::errc()) {
      return id;
    }
  }
  return std::nullopt;
}

// uid/gid as given: a number, a numeric string or a name; -1 when absent.
std::int64_t parse_owner(int root, const json::object& body, const char* key, const char* file,
                         const std::string& path) {
  const json::value* v = body.if_contains(key);
  if (!v || v->is_null()) return -1;
  if (v->is_int64() && v->as_int64() >= 0) return v->as_int64();
  if (v->is_uint64())
    return static_cast<std::int64_t>(std::min<std::uint64_t>(v->as_uint64(), 1u << 31));
  if (v->is_string() && !v->as_string().empty()) {
    std::string name(v->as_string());
    std::int64_t id = 0;
    auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), id);
    if (ec == std::errc() && ptr == name.data() + name.size() && id >= 0) return id;
    if (auto found = lookup_id(root, file, name)) return *found;
    invalid(std::string("no ") + (std::string_view(key) == "uid" ? "user" : "group") + " '" + name +
                "' in the sprite's " + file,
            path);
  }
  invalid(std::string(key) + " must be a number or a name", path);
}

json::object do_chown(int root, const json::object& body) {
  const std::string abs =
      absolute_path(string_member(body, "path").value_or(""),
                    string_member(body, "workingDir").value_or(kDefaultWorkingDir));
  std::int64_t uid = parse_owner(root, body, "uid", "/etc/passwd", abs);
  std::int64_t gid = parse_owner(root, body, "gid", "/etc/group", abs);
  if (uid < 0 && gid < 0) invalid("uid or gid is required", abs);
  const bool recursive = bool_member(body, "recursive", false);
  IdMap ids;
  const auto host_uid = static_cast<uid_t>(ids.to_host_uid(uid, abs));
  const auto host_gid = static_cast<gid_t>(ids.to_host_gid(gid, abs));
  json::array affected;
  Change change = [&](int dir, const std::string& name, const std::string& p,
                      const struct stat& st) {
    int rc = name.empty() ? ::fchownat(dir, "", host_uid, host_gid, AT_EMPTY_PATH)
                          : ::fchownat(dir, name.c_str(), host_uid, host_gid, AT_SYMLINK_NOFOLLOW);
    if (rc != 0) fail(errno, p);
    affected.push_back(json::object{{"path", p},
                                    {"uid", uid >= 0 ? uid : ids.from_host_uid(st.st_uid)},
                                    {"gid", gid >= 0 ? gid : ids.from_host_gid(st.st_gid)}});
  };
  apply_change(root, abs, recursive, change);
  json::object o;
  o["count"] = affected.size();
  o["affected"] = std::move(affected);
  return o;
}

// ---- read and write ---------------------------------------------------------

struct OpenedFile {
  Fd fd;
  std::uint64_t size = 0;
  std::string path;
};

OpenedFile open_for_read(int root, const std::string& path, const std::string& working_dir) {
  const std::string abs = absolute_path(path, working_dir);
  // O_PATH first: nothing but a regular file is ever opened for reading (no
  // FIFO that blocks, no device with side effects).
  Fd target = open_or_fail(root, abs, O_PATH);
  struct stat st {};
  if (::fstat(target.get(), &st) != 0) fail(errno, abs);
  if (S_ISDIR(st.st_mode)) {
    throw FsError{400, "EISDIR", "is a directory (list it with fs/list)", abs};
  }
  if (!S_ISREG(st.st_mode)) invalid("not a regular file", abs);
  int fd = ::open(proc_fd(target.get()).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) fail(errno, abs);
  return {Fd(fd), static_cast<std::uint64_t>(st.st_size), abs};
}

// A file being uploaded: written to an unnamed (O_TMPFILE) or hidden temp
// file in the target's directory, put in place only once complete.
struct Upload {
  Fd dir;
  std::string name;  // the target's name in dir
  std::string temp;  // a named temp file (when O_TMPFILE is not supported)
  Fd file;
  mode_t mode = 0644;
  std::optional<std::pair<uid_t, gid_t>> owner;  // an existing file's, kept
  std::string path;                              // as requested
  std::uint64_t size = 0;
};

// A hidden name next to `name` for an upload in progress.
std::string temp_name(const std::string& name) {
  static thread_local std::mt19937_64 gen{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof buf, ".upload-%016llx", static_cast<unsigned long long>(gen()));
  std::string temp(1, '.');
  temp.append(name, 0, std::min<std::size_t>(name.size(), 100));
  temp.append(buf);
  return temp;
}

std::shared_ptr<Upload> begin_upload(int root, const std::string& path,
                                     const std::string& working_dir, std::optional<mode_t> mode,
                                     bool make_dirs) {
  auto up = std::make_shared<Upload>();
  up->path = absolute_path(path, working_dir);
  const std::string real = follow_last_links(root, up->path);
  Parent p = open_parent(root, real, make_dirs);
  up->dir = std::move(p.dir);
  up->name = p.name;
  if (auto st = lstat_at(up->dir.get(), up->name)) {
    if (S_ISDIR(st->st_mode)) throw FsError{400, "EISDIR", "is a directory", up->path};
    if (S_ISREG(st->st_mode)) {
      up->mode = st->st_mode & 07777;
      up->owner = std::make_pair(st->st_uid, st->st_gid);
    }
  }
  if (mode) up->mode = *mode;
  int fd = ::openat(up->dir.get(), ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0 && errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL && errno != ENOENT) {
    fail(errno, up->path);
  }
  if (fd < 0) {
    up->temp = temp_name(up->name);
    fd = ::openat(up->dir.get(), up->temp.c_str(),
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) fail(errno, up->path);
  }
  up->file = Fd(fd);
  return up;
}

void write_all(int fd, const char* data, std::size_t size, const std::string& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail(errno, path);
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

// Puts a complete upload in place (replacing what was there).
void finish_upload(Upload& up) {
  if (up.owner) (void)::fchown(up.file.get(), up.owner->first, up.owner->second);
  if (::fchmod(up.file.get(), up.mode) != 0) fail(errno, up.path);
  if (up.temp.empty()) {
    // Give the unnamed file a hidden name, then rename it over the target:
    // linkat cannot replace.
    for (int attempt = 0;; ++attempt) {
      up.temp = temp_name(up.name);
      if (::linkat(AT_FDCWD, proc_fd(up.file.get()).c_str(), up.dir.get(), up.temp.c_str(),
                   AT_SYMLINK_FOLLOW) == 0) {
        break;
      }
      if (errno != EEXIST || attempt > 10) {
        int err = errno;
        up.temp.clear();
        fail(err, up.path);
      }
    }
  }
  if (::renameat(up.dir.get(), up.temp.c_str(), up.dir.get(), up.name.c_str()) != 0) {
    int err = errno;
    ::unlinkat(up.dir.get(), up.temp.c_str(), 0);
    up.temp.clear();
    fail(err, up.path);
  }
  up.temp.clear();
}

void abandon_upload(Upload& up) {
  if (!up.temp.empty()) ::unlinkat(up.dir.get(), up.temp.c_str(), 0);
  up.temp.clear();
}

// ---- running blocking work on the pool (run_blocking: engine/blocking.hpp) ----

// Blocking work started on the pool now and awaited later (an upload
// writes one chunk while it reads the next from the connection).
struct Job {
  explicit Job(const asio::any_io_executor& ex)
      : done(ex, std::chrono::steady_clock::time_point::max()) {}
  asio::steady_timer done;
  bool finished = false;
  std::exception_ptr error;
};

std::shared_ptr<Job> start_job(asio::thread_pool& pool, const asio::any_io_executor& ex,
                               std::function<void()> work) {
  auto job = std::make_shared<Job>(ex);
  auto home = asio::prefer(ex, asio::execution::outstanding_work.tracked);
  asio::post(pool, [job, work = std::move(work), home] {
    std::exception_ptr error;
    try {
      work();
    } catch (...) {
      error = std::current_exception();
    }
    asio::post(home, [job, error] {
      job->error = error;
      job->finished = true;
      job->done.cancel();
    });
  });
  return job;
}

// Waits for `job`; rethrows what its work threw.
asio::awaitable<void> wait_job(std::shared_ptr<Job> job) {
  while (!job->finished) co_await job->done.async_wait(kAsTuple);
  if (job->error) std::rethrow_exception(job->error);
}

// Holds the sprite's layer lock while alive (unlock() is not a wait).
class LayerLock {
 public:
  explicit LayerLock(AsyncMutex& m) : mutex_(&m) {}
  LayerLock(const LayerLock&) = delete;
  LayerLock& operator=(const LayerLock&) = delete;
  ~LayerLock() { mutex_->unlock(); }

 private:
  AsyncMutex* mutex_;
};

// ---- watch ------------------------------------------------------------------

// Entries reported as created when a directory appears with content already.
constexpr std::size_t kMaxExistingEvents = 10'000;

constexpr std::uint32_t kWatchMask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM |
                                     IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF;

struct WatchState {
  WatchState(const asio::any_io_executor& ex, int inotify) : stream(ex, inotify) {}
  asio::posix::stream_descriptor stream;
  std::map<int, std::pair<std::string, bool>> watches;  // wd -> path, recursive
  bool closed = false;
};

// Adds a watch on `abs` (and, when recursive, on every directory below it).
// Returns an error text, or "" when watched.
std::string add_watches(int root, int inotify, const std::string& abs, bool recursive,
                        std::map<int, std::pair<std::string, bool>>& watches) {
  int fd = open_in_root(root, abs, O_PATH);
  if (fd < 0) return abs + ": " + errno_text(errno);
  Fd target(fd);
  int wd = ::inotify_add_watch(inotify, proc_fd(target.get()).c_str(), kWatchMask);
  if (wd < 0) return abs + ": " + errno_text(errno);
  watches[wd] = {abs, recursive};
  if (!recursive) return "";
  struct stat st {};
  if (::fstat(target.get(), &st) != 0 || !S_ISDIR(st.st_mode)) return "";
  Fd reading(::openat(target.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!reading) return "";
  std::vector<std::string> names;
  try {
    names = read_names(std::move(reading), abs);
  } catch (const FsError&) {
    return "";
  }
  for (const std::string& name : names) {
    if (watches.size() >= kMaxWatches) return abs + ": too many directories to watch";
    auto child = lstat_at(target.get(), name);
    if (child && S_ISDIR(child->st_mode)) {
      std::string err = add_watches(root, inotify, join(abs, name), true, watches);
      if (!err.empty()) return err;
    }
  }
  return "";
}

// What is already inside a directory that just appeared under a recursive
// watch. Its watch is added only when its own creation is read, so what was
// made in it before then (mkdir -p a/b && touch a/b/f) raised no event:
// these are reported as created. At most `limit` entries.
struct Existing {
  std::string path;
  bool is_dir = false;
  std::int64_t size = 0;
};
void existing_entries(int root, const std::string& abs, std::vector<Existing>& out,
                      std::size_t limit) {
  int fd = open_in_root(root, abs, O_PATH | O_DIRECTORY);
  if (fd < 0) return;
  Fd target(fd);
  Fd reading(::openat(target.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!reading) return;
  std::vector<std::string> names;
  try {
    names = read_names(std::move(reading), abs);
  } catch (const FsError&) {
    return;
  }
  for (const std::string& name : names) {
    if (out.size() >= limit) return;
    auto child = lstat_at(target.get(), name);
    if (!child) continue;
    const bool is_dir = S_ISDIR(child->st_mode);
    out.push_back(
        {join(abs, name), is_dir, is_dir ? 0 : static_cast<std::int64_t>(child->st_size)});
    if (is_dir) existing_entries(root, join(abs, name), out, limit);
  }
}

std::string event_message(const std::string& path, const char* kind, bool is_dir,
                          std::int64_t size) {
  json::object o;
  o["type"] = "event";
  o["path"] = path;
  o["event"] = kind;
  o["timestamp"] = proto::format_rfc3339(std::chrono::system_clock::now());
  o["size"] = size;
  o["isDir"] = is_dir;
  return json::serialize(o);
}

std::string text_message(const char* type, const char* key, const std::string& value) {
  json::object o;
  o["type"] = type;
  o[key] = value;
  return json::serialize(o);
}

// The HTTP method of each endpoint; "" for an unknown one.
std::string method_of(const std::string& op) {
  static const std::map<std::string, std::string> methods = {
      {"read", "GET"},      {"write", "PUT"},   {"list", "GET"},
      {"delete", "DELETE"}, {"rename", "POST"}, {"copy", "POST"},
      {"chmod", "POST"},    {"chown", "POST"},  {"watch", "GET"}};
  auto it = methods.find(op);
  return it == methods.end() ? "" : it->second;
}

// Reads the client's messages until it closes, then ends the watch.
asio::awaitable<void> watch_client(std::shared_ptr<WebSocket> ws,
                                   std::shared_ptr<WatchState> state) {
  while (co_await ws->read()) {
  }
  state->closed = true;
  boost::system::error_code ignored;
  state->stream.cancel(ignored);
}

}  // namespace

FsApi::FsApi(Fleet& fleet, Store& store)
    : fleet_(fleet), store_(store), pool_(std::make_unique<asio::thread_pool>(4)) {}

FsApi::~FsApi() {
  pool_->join();
}

asio::awaitable<void> FsApi::serve(HttpExchange& exchange, const proto::Target& target,
                                   const std::string& name) {
  const HttpRequest& request = exchange.request();
  const auto& seg = target.segments;
  const std::string op = seg.size() == 5 ? seg[4] : "";
  const std::string& method = request.method;
  const std::string expected = method_of(op);
  if (expected.empty()) {
    FsError e{404, "ENOENT", "no such filesystem endpoint: /fs/" + op, ""};
    co_await exchange.respond(error_response(e));
    co_return;
  }
  if (expected != method && !(op == "delete" && method == "POST")) {
    FsError e{405, "EINVAL", "fs/" + op + " takes " + expected + ", not " + method, ""};
    HttpResponse r = error_response(e);
    r.headers.emplace_back("Allow", expected);
    co_await exchange.respond(std::move(r));
    co_return;
  }

  auto hold = fleet_.hold(name);
  auto [machine, failure] = co_await fleet_.try_wake(name);
  if (!machine) {
    co_await exchange.respond(
        api_error(503, "sprite_unavailable", "cannot start the sprite: " + failure));
    co_return;
  }
  if (op == "read") {
    co_await read(exchange, target, machine);
    co_return;
  }
  if (op == "write") {
    co_await write(exchange, target, machine);
    co_return;
  }
  if (op == "watch") {
    co_await watch(exchange, machine);
    co_return;
  }

  const int root = machine->root_fd();
  std::optional<FsError> error;
  json::object result;
  const bool mutating = op != "list";
  if (mutating) co_await fleet_.layer_lock(name).lock();
  std::optional<LayerLock> locked;
  if (mutating) locked.emplace(fleet_.layer_lock(name));
  try {
    std::function<json::object()> work;
    if (op == "list") {
      ListRequest req;
      req.path = target.param("path").value_or("");
      req.working_dir = target.param("workingDir").value_or(kDefaultWorkingDir);
      req.recursive = query_bool(target, "recursive", false);
      req.pattern = target.param("pattern").value_or("");
      work = [root, req] { return do_list(root, req); };
    } else if (op == "delete") {
      std::string path;
      std::string working_dir = kDefaultWorkingDir;
      bool recursive = false;
      if (target.param("path")) {  // the SDKs' query form wins (spec §16 item 4)
        path = *target.param("path");
        working_dir = target.param("workingDir").value_or(kDefaultWorkingDir);
        recursive = query_bool(target, "recursive", false);
      } else {
        json::object body = parse_body(request.body);
        path = string_member(body, "path").value_or("");
        working_dir = string_member(body, "workingDir").value_or(kDefaultWorkingDir);
        recursive = bool_member(body, "recursive", false);
      }
      work = [root, path, working_dir, recursive] {
        return do_delete(root, path, working_dir, recursive);
      };
    } else if (op == "rename") {
      json::object body = parse_body(request.body);
      std::string source = string_member(body, "source").value_or("");
      std::string dest = string_member(body, "dest").value_or("");
      std::string working_dir = string_member(body, "workingDir").value_or(kDefaultWorkingDir);
      if (source.empty() || dest.empty()) invalid("source and dest are required");
      work = [root, source, dest, working_dir] {
        return do_rename(root, source, dest, working_dir);
      };
    } else if (op == "copy") {
      json::object body = parse_body(request.body);
      CopyRequest req;
      req.source = string_member(body, "source").value_or("");
      req.dest = string_member(body, "dest").value_or("");
      req.working_dir = string_member(body, "workingDir").value_or(kDefaultWorkingDir);
      req.recursive = bool_member(body, "recursive", false);
      req.preserve = bool_member(body, "preserveAttrs", false);
      if (req.source.empty() || req.dest.empty()) invalid("source and dest are required");
      work = [root, req] { return do_copy(root, req); };
    } else if (op == "chmod") {
      json::object body = parse_body(request.body);
      std::string path = string_member(body, "path").value_or("");
      std::string working_dir = string_member(body, "workingDir").value_or(kDefaultWorkingDir);
      std::optional<mode_t> mode;
      if (const json::value* m = body.if_contains("mode"); m && m->is_int64()) {
        if (m->as_int64() < 0 || m->as_int64() > 07777) invalid("mode out of range");
        mode = static_cast<mode_t>(m->as_int64());
      } else {
        mode = parse_mode(string_member(body, "mode"));
      }
      if (!mode) invalid("mode is required (an octal string such as 0755)");
      bool recursive = bool_member(body, "recursive", false);
      mode_t m = *mode;
      work = [root, path, working_dir, m, recursive] {
        return do_chmod(root, path, working_dir, m, recursive);
      };
    } else {  // chown
      json::object body = parse_body(request.body);
      work = [root, body] { return do_chown(root, body); };
    }
    result = co_await run_blocking<json::object>(*pool_, std::move(work));
  } catch (const FsError& e) {
    error = e;
  }
  locked.reset();
  if (error) {
    co_await exchange.respond(error_response(*error));
    co_return;
  }
  co_await exchange.respond(json_response(result));
}

asio::awaitable<void> FsApi::read(HttpExchange& exchange, const proto::Target& target,
                                  std::shared_ptr<Machine> machine) {
  const int root = machine->root_fd();
  const std::string path = target.param("path").value_or("");
  const std::string working_dir = target.param("workingDir").value_or(kDefaultWorkingDir);
  std::optional<FsError> error;
  std::shared_ptr<OpenedFile> file;
  try {
    std::function<std::shared_ptr<OpenedFile>()> work = [root, path, working_dir] {
      return std::make_shared<OpenedFile>(open_for_read(root, path, working_dir));
    };
    file = co_await run_blocking<std::shared_ptr<OpenedFile>>(*pool_, std::move(work));
  } catch (const FsError& e) {
    error = e;
  }
  if (error) {
    co_await exchange.respond(error_response(*error));
    co_return;
  }
  if (!co_await exchange.start_stream(200, "application/octet-stream")) co_return;
  // The size when opened is what is sent: a file that grows meanwhile is cut
  // there; one that shrinks ends the response early (the client sees it).
  const int fd = file->fd.get();
  const std::uint64_t size = file->size;
  for (std::uint64_t at = 0; at < size;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(kSendChunk, size - at));
    // Into the page cache on the pool (a disk read may take a while), then
    // from the cache to the socket on the event loop, without a copy.
    std::function<int()> cache = [fd, at, n] {
      (void)::readahead(fd, static_cast<off_t>(at), n);
      return 0;
    };
    co_await run_blocking<int>(*pool_, std::move(cache));
    if (!co_await exchange.write_file_chunk(fd, at, n)) co_return;
    at += n;
  }
  co_await exchange.finish_stream();
}

asio::awaitable<void> FsApi::write(HttpExchange& exchange, const proto::Target& target,
                                   std::shared_ptr<Machine> machine) {
  const int root = machine->root_fd();
  const std::string name = target.segments[2];
  std::optional<FsError> error;
  std::shared_ptr<Upload> upload;
  bool cut_off = false;
  std::string cut_reason;

  AsyncMutex& layer = fleet_.layer_lock(name);
  co_await layer.lock();
  LayerLock locked(layer);
  try {
    const std::string path = target.param("path").value_or("");
    const std::string working_dir = target.param("workingDir").value_or(kDefaultWorkingDir);
    const std::optional<mode_t> mode = parse_mode(target.param("mode"));
    // Both names (SDKs: mkdirParents, Docs: mkdir); true when neither is given (spec §10.3).
    const bool make_dirs = target.param("mkdirParents") ? query_bool(target, "mkdirParents", true)
                                                        : query_bool(target, "mkdir", true);
    std::function<std::shared_ptr<Upload>()> begin = [root, path, working_dir, mode, make_dirs] {
      return begin_upload(root, path, working_dir, mode, make_dirs);
    };
    upload = co_await run_blocking<std::shared_ptr<Upload>>(*pool_, std::move(begin));

    // Two buffers: one is written to the file on the pool while the next
    // is filled from the connection.
    const auto executor = co_await asio::this_coro::executor;
    std::shared_ptr<std::string> buffers[2] = {std::make_shared<std::string>(kChunk, '\0'),
                                               std::make_shared<std::string>(kChunk, '\0')};
    std::shared_ptr<Job> pending;
    for (int current = 0;; current ^= 1) {
      std::shared_ptr<std::string> buffer = buffers[current];
      // Fill a whole chunk from the connection, then write it in one go.
      std::size_t filled = 0;
      bool end = false;
      while (filled < buffer->size()) {
        std::size_t n = 0;
        try {
          n = co_await exchange.read_body(buffer->data() + filled, buffer->size() - filled);
        } catch (const std::runtime_error& e) {
          cut_off = true;
          cut_reason = e.what();
        }
        if (cut_off || n == 0) {
          end = true;
          break;
        }
        filled += n;
      }
      if (pending) {
        std::shared_ptr<Job> previous = std::move(pending);
        co_await wait_job(previous);
      }
      if (cut_off) break;
      if (filled > 0) {
        std::function<void()> put = [upload, buffer, filled] {
          write_all(upload->file.get(), buffer->data(), filled, upload->path);
          upload->size += filled;
        };
        pending = start_job(*pool_, executor, std::move(put));
      }
      if (end) break;
    }
    if (pending) {
      std::shared_ptr<Job> last = std::move(pending);
      co_await wait_job(last);
    }
    if (!cut_off) {
      std::function<int()> finish = [upload] {
        finish_upload(*upload);
        return 0;
      };
      co_await run_blocking<int>(*pool_, std::move(finish));
    }
  } catch (const FsError& e) {
    error = e;
  }
  if (upload && (error || cut_off)) {
    std::function<int()> abandon = [upload] {
      abandon_upload(*upload);
      return 0;
    };
    co_await run_blocking<int>(*pool_, std::move(abandon));
  }
  if (cut_off) {
    // Nobody is left to answer (or the body was malformed): say so if we can.
    FsError e{400, "EIO", "the upload was cut off, nothing was written: " + cut_reason,
              upload ? upload->path : ""};
    co_await exchange.respond(error_response(e));
    co_return;
  }
  if (error) {
    co_await exchange.respond(error_response(*error));
    co_return;
  }
  json::object o;
  o["path"] = upload->path;
  o["size"] = upload->size;
  o["mode"] = mode_string(upload->mode);
  co_await exchange.respond(json_response(o));
}

asio::awaitable<void> FsApi::watch(HttpExchange& exchange, std::shared_ptr<Machine> machine) {
  const int root = machine->root_fd();
  auto ws = co_await exchange.accept_websocket({});
  if (!ws) co_return;
  auto first = co_await ws->read();
  if (!first) co_return;
  json::object sub;
  {
    json::error_code ec;
    json::value v = json::parse(first->data, ec);
    if (!ec && v.is_object()) sub = std::move(v.as_object());
  }
  const json::value* type = sub.if_contains("type");
  if (!type || !type->is_string() || type->as_string() != "subscribe") {
    std::string msg = text_message(
        "error", "message", R"(the first message must be {"type":"subscribe","paths":[...]})");
    co_await ws->write(false, msg);
    co_await ws->close(1008);
    co_return;
  }
  std::string working_dir = kDefaultWorkingDir;
  if (const json::value* wd = sub.if_contains("workingDir"); wd && wd->is_string()) {
    working_dir = std::string(wd->as_string());
  }
  const json::value* rec = sub.if_contains("recursive");
  const bool recursive = rec && rec->is_bool() && rec->as_bool();
  std::vector<std::string> paths;
  if (const json::value* ps = sub.if_contains("paths"); ps && ps->is_array()) {
    for (const auto& p : ps->as_array()) {
      if (p.is_string()) paths.emplace_back(p.as_string());
    }
  }

  int inotify = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify < 0) {
    std::string msg = text_message("error", "message", "cannot watch: " + errno_text(errno));
    co_await ws->write(false, msg);
    co_await ws->close(1011);
    co_return;
  }
  const auto executor = co_await asio::this_coro::executor;
  auto state = std::make_shared<WatchState>(executor, inotify);
  // Resolving and walking the trees is blocking work.
  struct Subscribed {
    std::vector<std::string> resolved;
    std::vector<std::string> errors;
    std::map<int, std::pair<std::string, bool>> watches;
  };
  std::function<std::shared_ptr<Subscribed>()> subscribe = [root, inotify, paths, working_dir,
                                                            recursive] {
    auto s = std::make_shared<Subscribed>();
    for (const auto& p : paths) {
      std::string abs;
      try {
        abs = absolute_path(p, working_dir);
      } catch (const FsError& e) {
        s->errors.push_back(p + ": " + e.text);
        continue;
      }
      std::string err = add_watches(root, inotify, abs, recursive, s->watches);
      if (err.empty()) {
        s->resolved.push_back(abs);
      } else {
        s->errors.push_back(err);
      }
    }
    return s;
  };
  auto subscribed =
      co_await run_blocking<std::shared_ptr<Subscribed>>(*pool_, std::move(subscribe));
  state->watches = std::move(subscribed->watches);
  for (const auto& err : subscribed->errors) {
    std::string msg = text_message("error", "message", err);
    co_await ws->write(false, msg);
  }
  if (subscribed->resolved.empty()) {
    co_await ws->close(1000);
    co_return;
  }
  {
    json::object o;
    o["type"] = "subscribed";
    json::array resolved;
    for (const auto& p : subscribed->resolved) resolved.emplace_back(p);
    o["paths"] = std::move(resolved);
    std::string msg = json::serialize(o);
    if (!co_await ws->write(false, msg)) co_return;
  }

  asio::co_spawn(executor, watch_client(ws, state), asio::detached);
  std::vector<char> buffer(std::size_t{64} * 1024);
  while (!state->closed) {
    auto [ec, n] = co_await state->stream.async_read_some(asio::buffer(buffer), kAsTuple);
    if (ec || state->closed) break;
    std::vector<std::string> messages;
    std::string last;
    for (std::size_t at = 0; at + sizeof(inotify_event) <= n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buffer.data() + at);
      at += sizeof(inotify_event) + ev->len;
      if (ev->mask & IN_Q_OVERFLOW) {
        messages.push_back(text_message("error", "message", "too many events: some were lost"));
        continue;
      }
      auto w = state->watches.find(ev->wd);
      if (w == state->watches.end()) continue;
      if (ev->mask & IN_IGNORED) {
        state->watches.erase(w);
        continue;
      }
      const std::string dir = w->second.first;
      const bool rec_watch = w->second.second;
      std::string child = ev->len > 0 ? std::string(ev->name) : std::string();
      const std::string path = child.empty() ? dir : join(dir, child);
      const bool is_dir = (ev->mask & IN_ISDIR) != 0;
      const char* kind = "write";
      if (ev->mask & IN_CREATE) {
        kind = "create";
      } else if (ev->mask & (IN_DELETE | IN_DELETE_SELF)) {
        kind = "remove";
      } else if (ev->mask & (IN_MOVED_FROM | IN_MOVED_TO | IN_MOVE_SELF)) {
        kind = "rename";
      } else if (ev->mask & IN_ATTRIB) {
        kind = "chmod";
      }
      std::int64_t size = 0;
      if (std::string_view(kind) != "remove") {
        int fd = open_in_root(root, path, O_PATH | O_NOFOLLOW);
        struct stat st {};
        if (fd >= 0 && ::fstat(fd, &st) == 0) size = st.st_size;
        if (fd >= 0) ::close(fd);
      }
      if (rec_watch && is_dir && (ev->mask & (IN_CREATE | IN_MOVED_TO)) &&
          state->watches.size() < kMaxWatches) {
        add_watches(root, inotify, path, true, state->watches);  // a new directory, small
      }
      std::string message = event_message(path, kind, is_dir, size);
      if (rec_watch && is_dir && (ev->mask & (IN_CREATE | IN_MOVED_TO))) {
        messages.push_back(std::move(message));
        std::vector<Existing> inside;
        existing_entries(root, path, inside, kMaxExistingEvents);
        for (const auto& e : inside) {
          messages.push_back(event_message(e.path, "create", e.is_dir, e.size));
        }
        last.clear();
        continue;
      }
      // A burst of writes to one file is one event per read of the queue.
      std::string key = std::string(kind) + "\n" + path;
      if (key == last && std::string_view(kind) == "write") continue;
      last = key;
      messages.push_back(std::move(message));
    }
    for (const auto& m : messages) {
      if (!co_await ws->write(false, m)) {
        state->closed = true;
        break;
      }
    }
  }
  if (ws->is_open()) co_await ws->close(1000);
}

}  // namespace spritescript::engine
