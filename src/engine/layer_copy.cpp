#include "engine/layer_copy.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>
#include <vector>

namespace spritescript::engine::layer_copy {
namespace {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

[[noreturn]] void fail(const std::string& what, const std::string& path) {
  throw std::runtime_error(what + " " + (path.empty() ? "." : path) + ": " + std::strerror(errno));
}

std::int64_t nanos(const timespec& t) {
  return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

Identity identity_of(const struct stat& st) {
  return {static_cast<std::uint64_t>(st.st_ino), nanos(st.st_ctim), nanos(st.st_mtim),
          static_cast<std::uint64_t>(st.st_size)};
}

// overlay's bookkeeping that points at the old lower layers' inodes; the
// opaque marker (and anything else) is kept.
bool skip_xattr(std::string_view name) {
  return name == "user.overlay.origin" || name == "user.overlay.impure" ||
         name.rfind("trusted.", 0) == 0;
}

void copy_xattrs(int from, int to) {
  ssize_t size = ::flistxattr(from, nullptr, 0);
  if (size <= 0) return;
  std::string names(static_cast<std::size_t>(size), '\0');
  size = ::flistxattr(from, names.data(), names.size());
  if (size <= 0) return;
  names.resize(static_cast<std::size_t>(size));
  std::string value;
  for (std::size_t at = 0; at < names.size();) {
    std::string name(names.c_str() + at);
    at += name.size() + 1;
    if (name.empty() || skip_xattr(name)) continue;
    ssize_t n = ::fgetxattr(from, name.c_str(), nullptr, 0);
    if (n < 0) continue;
    value.resize(static_cast<std::size_t>(n));
    n = ::fgetxattr(from, name.c_str(), value.data(), value.size());
    if (n < 0) continue;
    // Best effort: a security.* attribute the namespace may not set must not
    // fail the copy; the opaque marker is a user.* one and always can be.
    ::fsetxattr(to, name.c_str(), value.data(), static_cast<std::size_t>(n), 0);
  }
}

// The process's umask, read once (reading it means setting it).
mode_t current_umask() {
  static const mode_t mask = [] {
    mode_t m = ::umask(022);
    ::umask(m);
    return m;
  }();
  return mask;
}

// `created_mode`: what the destination was created with (before the umask).
// Per-file system calls are what a checkpoint of many small files costs, so
// the owner and mode are set only when they differ from what creation gave.
void copy_owner_mode_times(int fd, const struct stat& st, mode_t created_mode) {
  bool chowned = false;
  if (st.st_uid != ::geteuid() || st.st_gid != ::getegid()) {
    // Rootless: ids the namespace does not map keep the engine's user.
    chowned = ::fchown(fd, st.st_uid, st.st_gid) == 0;
  }
  const mode_t wanted = st.st_mode & 07777;
  if (chowned || wanted != (created_mode & ~current_umask() & 07777)) ::fchmod(fd, wanted);
  const timespec times[2] = {st.st_atim, st.st_mtim};
  ::futimens(fd, times);
}

// What the copy of one tree shares across its directories. One thread: a
// second one for big directories was tried, and perf showed 41% of the time
// spinning on the destination directory's lock (ext4 creates one file at a
// time per directory), with no gain.
struct Shared {
  std::map<ino_t, std::string> hard_links;
  bool clone_ok = true;
};

class Copier {
 public:
  Copier(int destination_root, const Options& options, Stats& stats, Shared& shared)
      : destination_root_(destination_root), options_(options), stats_(stats), shared_(shared) {}

  void directory(int source, int destination, const std::string& prefix) {
    std::vector<std::string> names;
    {
      int dup = ::fcntl(source, F_DUPFD_CLOEXEC, 0);
      if (dup < 0) fail("cannot read", prefix);
      DIR* listing = ::fdopendir(dup);
      if (!listing) {
        ::close(dup);
        fail("cannot read", prefix);
      }
      ::rewinddir(listing);
      while (dirent* entry = ::readdir(listing)) {
        std::string_view name = entry->d_name;
        if (name == "." || name == "..") continue;
        if (prefix.empty() && options_.skip_top && options_.skip_top(name)) continue;
        names.emplace_back(name);
      }
      ::closedir(listing);
    }
    for (const auto& name : names) entry(source, destination, prefix, name);
  }

 private:
  void entry(int source, int destination, const std::string& prefix, const std::string& name) {
    const std::string rel = prefix.empty() ? name : prefix + "/" + name;
    if (options_.cancel && options_.cancel->load())
      throw std::runtime_error("the copy was cancelled");
    struct stat st {};
    if (::fstatat(source, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) return;  // gone meanwhile (a process not frozen)
      fail("cannot stat", rel);
    }
    if (S_ISDIR(st.st_mode)) {
      ++stats_.directories;
      Fd from(::openat(source, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (from.get() < 0) fail("cannot open", rel);
      if (::mkdirat(destination, name.c_str(), 0700) != 0) fail("cannot create", rel);
      Fd to(::openat(destination, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (to.get() < 0) fail("cannot open", rel);
      directory(from.get(), to.get(), rel);
      copy_xattrs(from.get(), to.get());
      copy_owner_mode_times(to.get(), st, 0700);  // times last: the children changed them
    } else if (S_ISREG(st.st_mode)) {
      regular(source, destination, rel, name, st);
    } else if (S_ISLNK(st.st_mode)) {
      ++stats_.others;
      std::string target(static_cast<std::size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(source, name.c_str(), target.data(), target.size());
      if (n < 0) fail("cannot read the link", rel);
      target.resize(static_cast<std::size_t>(n));
      if (::symlinkat(target.c_str(), destination, name.c_str()) != 0) fail("cannot create", rel);
      ::fchownat(destination, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
      const timespec times[2] = {st.st_atim, st.st_mtim};
      ::utimensat(destination, name.c_str(), times, AT_SYMLINK_NOFOLLOW);
    } else {
      // Whiteouts (character device 0:0), fifos, sockets, device nodes.
      ++stats_.others;
      if (::mknodat(destination, name.c_str(), st.st_mode, st.st_rdev) != 0) {
        const bool whiteout = S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
        // A device node the namespace may not make is dropped; a whiteout
        // never is (it hides a host file the sprite deleted).
        if (whiteout || errno != EPERM) fail("cannot create", rel);
        return;
      }
      ::fchownat(destination, name.c_str(), st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
      ::fchmodat(destination, name.c_str(), st.st_mode & 07777, 0);
    }
  }

  void regular(int source, int destination, const std::string& rel, const std::string& name,
               const struct stat& st) {
    ++stats_.files;
    const Identity id = identity_of(st);
    if (options_.record && id.ctime_ns < options_.record_before_ns) (*options_.record)[rel] = id;
    // A second name of an inode already copied: the same link here.
    if (st.st_nlink > 1) {
      auto [it, first] = shared_.hard_links.try_emplace(st.st_ino, rel);
      if (!first) {
        if (::linkat(destination_root_, it->second.c_str(), destination, name.c_str(), 0) != 0) {
          fail("cannot link", rel);
        }
        return;
      }
    }
    if (options_.reuse_root >= 0 && options_.reused_from) {
      auto it = options_.reused_from->find(rel);
      if (it != options_.reused_from->end() && it->second == id &&
          ::linkat(options_.reuse_root, rel.c_str(), destination, name.c_str(), 0) == 0) {
        ++stats_.files_reused;
        return;
      }
    }
    Fd from(::openat(source, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (from.get() < 0) fail("cannot open", rel);
    // Created with its own permission bits: no fchmod in the common case.
    // (The data is written through the descriptor, so read-only modes are
    // fine.)
    const mode_t created = st.st_mode & 0777;
    Fd to(::openat(destination, name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                   created));
    if (to.get() < 0) fail("cannot create", rel);
    if (st.st_size > 0) {
      if (shared_.clone_ok && ::ioctl(to.get(), FICLONE, from.get()) == 0) {
        ++stats_.files_cloned;
      } else {
        if (errno == EOPNOTSUPP || errno == EXDEV || errno == EINVAL || errno == ENOTTY) {
          shared_.clone_ok = false;  // ext4 and friends: never try again
        }
        copy_data(from.get(), to.get(), rel, static_cast<std::uint64_t>(st.st_size));
      }
    }
    copy_xattrs(from.get(), to.get());
    copy_owner_mode_times(to.get(), st, created);
  }

  // `size`: what stat said. The sprite is paused, so the file is that long;
  // stopping there saves the call that would read the end.
  void copy_data(int from, int to, const std::string& rel, std::uint64_t size) {
    std::uint64_t copied = 0;
    for (;;) {
      ssize_t n = ::copy_file_range(from, nullptr, to, nullptr, std::size_t{1} << 30, 0);
      if (n > 0) {
        stats_.bytes_copied += static_cast<std::uint64_t>(n);
        copied += static_cast<std::uint64_t>(n);
        if (copied == size) return;  // saves the call that reads the end
        continue;
      }
      if (n == 0) return;
      if (errno == EINTR) continue;
      if (errno != EXDEV && errno != EINVAL && errno != EOPNOTSUPP && errno != ENOSYS) {
        fail("cannot copy", rel);
      }
      break;  // no in-kernel copy here: plain reads and writes
    }
    std::vector<char> buffer(std::size_t{1} << 20);
    for (;;) {
      ssize_t n = ::read(from, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("cannot read", rel);
      if (n == 0) return;
      for (ssize_t done = 0; done < n;) {
        ssize_t w = ::write(to, buffer.data() + done, static_cast<std::size_t>(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) fail("cannot write", rel);
        done += w;
      }
      stats_.bytes_copied += static_cast<std::uint64_t>(n);
    }
  }

  int destination_root_;
  const Options& options_;
  Stats& stats_;
  Shared& shared_;
};

std::uint64_t bytes_under(int dir) {
  std::uint64_t total = 0;
  int dup = ::fcntl(dir, F_DUPFD_CLOEXEC, 0);
  if (dup < 0) return 0;
  DIR* listing = ::fdopendir(dup);
  if (!listing) {
    ::close(dup);
    return 0;
  }
  ::rewinddir(listing);
  while (dirent* entry = ::readdir(listing)) {
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    struct stat st {};
    if (::fstatat(dir, entry->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    if (S_ISREG(st.st_mode)) {
      total += static_cast<std::uint64_t>(st.st_size);
    } else if (S_ISDIR(st.st_mode)) {
      Fd sub(::openat(dir, entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (sub.get() >= 0) total += bytes_under(sub.get());
    }
  }
  ::closedir(listing);
  return total;
}

}  // namespace

std::string serialize(const Manifest& manifest) {
  // One line per file: inode ctime mtime size length:path (a path may hold
  // any byte but NUL, newlines included).
  std::string out;
  out.reserve(manifest.size() * 64);
  for (const auto& [path, id] : manifest) {
    out += std::to_string(id.inode) + ' ' + std::to_string(id.ctime_ns) + ' ' +
           std::to_string(id.mtime_ns) + ' ' + std::to_string(id.size) + ' ' +
           std::to_string(path.size()) + ':' + path + '\n';
  }
  return out;
}

Manifest parse_manifest(std::string_view text) {
  Manifest manifest;
  std::size_t at = 0;
  while (at < text.size()) {
    Identity id;
    std::uint64_t length = 0;
    int consumed = 0;
    std::string head(text.substr(at, 128));
    if (std::sscanf(head.c_str(), "%lu %ld %ld %lu %lu:%n", &id.inode, &id.ctime_ns, &id.mtime_ns,
                    &id.size, &length, &consumed) != 5 ||
        consumed <= 0 || at + static_cast<std::size_t>(consumed) + length + 1 > text.size()) {
      break;  // torn at the end
    }
    at += static_cast<std::size_t>(consumed);
    std::string path(text.substr(at, length));
    at += length;
    if (text[at] != '\n') break;
    ++at;
    manifest.emplace(std::move(path), id);
  }
  return manifest;
}

Stats copy_tree(int source, int destination, const Options& options) {
  Stats stats;
  Shared shared;
  Copier copier(destination, options, stats, shared);
  copier.directory(source, destination, "");
  return stats;
}

std::uint64_t tree_bytes(int dir) {
  return bytes_under(dir);
}

}  // namespace spritescript::engine::layer_copy
