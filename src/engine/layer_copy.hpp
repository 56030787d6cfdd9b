// Copies a sprite's writable layer (a directory tree with overlay whiteouts
// and opaque-directory xattrs) for checkpoints and restores, preserving
// owners, modes, times, extended attributes and hard links. Blocking: run it
// off the event loop.
//
// Data is cloned (FICLONE: xfs, btrfs) where the filesystem can, else copied
// in the kernel (copy_file_range). A checkpoint can also reuse files of an
// earlier checkpoint by hard link: checkpoints are immutable, so sharing an
// inode between two of them is safe, and a source file whose inode, ctime,
// mtime and size match what the earlier checkpoint recorded was not changed
// since (ctime cannot be set by a process). docs/architecture.md,
// "Checkpoints", has the reasoning.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace spritescript::engine::layer_copy {

// What a copied source file was, by its path relative to the tree's root.
struct Identity {
  std::uint64_t inode = 0;
  std::int64_t ctime_ns = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t size = 0;
  bool operator==(const Identity&) const = default;
};
using Manifest = std::unordered_map<std::string, Identity>;

std::string serialize(const Manifest& manifest);
// Lines that do not parse are skipped (a torn manifest only costs copies).
Manifest parse_manifest(std::string_view text);

struct Options {
  // Reuse: an earlier copy (directory fd) and what its files were copied
  // from. A file is linked from there when its identity is unchanged.
  int reuse_root = -1;
  const Manifest* reused_from = nullptr;
  // Record the identities of copied files into `record`, for the next copy
  // to reuse; only files whose ctime is older than `record_before_ns`
  // (timestamps are coarse: a change in the same tick as the copy would
  // keep the same ctime).
  Manifest* record = nullptr;
  std::int64_t record_before_ns = 0;
  // Names at the top level that are not copied.
  std::function<bool(std::string_view name)> skip_top;
  // When set (from another thread), the copy throws at its next entry.
  const std::atomic<bool>* cancel = nullptr;
};

struct Stats {
  std::uint64_t files = 0;  // regular files
  std::uint64_t directories = 0;
  std::uint64_t others = 0;        // symlinks, whiteouts, fifos...
  std::uint64_t bytes_copied = 0;  // data actually copied
  std::uint64_t files_reused = 0;  // linked from the earlier copy
  std::uint64_t files_cloned = 0;  // reflinked

  Stats& operator+=(const Stats& other) {
    files += other.files;
    directories += other.directories;
    others += other.others;
    bytes_copied += other.bytes_copied;
    files_reused += other.files_reused;
    files_cloned += other.files_cloned;
    return *this;
  }
};

// Copies the contents of directory `source` into the empty directory
// `destination` (both fds stay owned by the caller). Throws
// std::runtime_error naming the path that failed.
Stats copy_tree(int source, int destination, const Options& options = {});

// Sums the sizes of the regular files under `dir` (for progress lines).
std::uint64_t tree_bytes(int dir);

}  // namespace spritescript::engine::layer_copy
