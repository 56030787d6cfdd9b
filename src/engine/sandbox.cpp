#include "engine/sandbox.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "engine/sprite_dir.hpp"

namespace fs = std::filesystem;

namespace spritescript::engine::sandbox {
namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

void write_proc_file(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) fail("cannot open " + path);
  ssize_t n = ::write(fd, text.data(), text.size());
  int saved = errno;
  ::close(fd);
  errno = saved;
  if (n != static_cast<ssize_t>(text.size())) fail("cannot write " + path);
}

void make_dir(const fs::path& p, mode_t mode = 0755) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) throw std::runtime_error("cannot create " + p.string() + ": " + ec.message());
  ::chmod(p.c_str(), mode);
}

void mount_or_fail(const char* source, const fs::path& target, const char* type,
                   unsigned long flags, const std::string& data = {}) {
  if (::mount(source, target.c_str(), type, flags, data.empty() ? nullptr : data.c_str()) != 0) {
    fail(std::string("cannot mount ") + (type ? type : source) + " on " + target.string());
  }
}

// Host directories a sprite sees through an overlay (writes go to its layer).
constexpr std::array kOverlaid = {"usr",  "etc", "opt",   "var",   "srv",   "bin",
                                  "sbin", "lib", "lib32", "lib64", "libx32"};
// Directories that are the sprite's own, straight from its layer.
constexpr std::array kOwn = {"home", "root", "tmp", "mnt", "media"};

void mount_dev(const fs::path& dev) {
  make_dir(dev);
  mount_or_fail("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m");
  for (const char* node : {"null", "zero", "full", "random", "urandom", "tty"}) {
    fs::path target = dev / node;
    int fd = ::open(target.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
    if (fd >= 0) ::close(fd);
    mount_or_fail((std::string("/dev/") + node).c_str(), target, nullptr, MS_BIND);
  }
  make_dir(dev / "pts");
  // A devpts of its own: `tty` inside says /dev/pts/N, and no host pty shows.
  mount_or_fail("devpts", dev / "pts", "devpts", MS_NOSUID | MS_NOEXEC,
                "newinstance,ptmxmode=0666,mode=0620");
  ::symlink("pts/ptmx", (dev / "ptmx").c_str());
  make_dir(dev / "shm", 01777);
  mount_or_fail("tmpfs", dev / "shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  ::symlink("/proc/self/fd", (dev / "fd").c_str());
  ::symlink("/proc/self/fd/0", (dev / "stdin").c_str());
  ::symlink("/proc/self/fd/1", (dev / "stdout").c_str());
  ::symlink("/proc/self/fd/2", (dev / "stderr").c_str());
}

void bring_up_loopback() {
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) fail("cannot open a socket for loopback");
  ifreq ifr{};
  std::strncpy(ifr.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    ::ioctl(s, SIOCSIFFLAGS, &ifr);
  }
  ::close(s);
}

// First boot only, best effort: the sprite's own name in /etc. (Running
// rootless, /etc's files belong to a host user the namespace cannot map and
// stay as they are.)
void name_the_host(const std::string& hostname) {
  std::ifstream current("/etc/hostname");
  std::string line;
  if (std::getline(current, line) && line == hostname) return;
  std::ofstream("/etc/hostname", std::ios::trunc) << hostname << "\n";
  std::ofstream("/etc/hosts", std::ios::trunc) << "127.0.0.1\tlocalhost\n127.0.1.1\t" << hostname
                                               << "\n::1\tlocalhost ip6-localhost ip6-loopback\n";
}

// /etc/resolv.conf names the engine's resolver. The file in /etc may belong
// to a host user the namespace cannot map, so ours is mounted over it (or,
// when it links into /run, written there: /run is the sprite's own tmpfs).
void point_resolver_at_engine(const fs::path& root) {
  const std::string text = std::string("# spritescript: the local engine's resolver; it applies ") +
                           "the sprite's network policy\nnameserver " + kEgressAddress +
                           "\noptions edns0\n";
  const fs::path conf = root / "etc" / "resolv.conf";
  std::error_code ec;
  auto status = fs::symlink_status(conf, ec);
  if (!ec && fs::is_symlink(status)) {
    fs::path target = fs::read_symlink(conf, ec);
    if (!ec && target.string().starts_with("/run/")) {
      make_dir((root / target.relative_path()).parent_path());
      std::ofstream(root / target.relative_path(), std::ios::trunc) << text;
      return;
    }
  }
  const fs::path ours = root / "run" / "spritescript" / "resolv.conf";
  make_dir(ours.parent_path());
  std::ofstream(ours, std::ios::trunc) << text;
  if (!fs::exists(conf, ec)) {
    int fd = ::open(conf.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) fail("cannot create /etc/resolv.conf");
    ::close(fd);
  }
  mount_or_fail(ours.c_str(), conf, nullptr, MS_BIND);
}

int bound_socket(int type, int port) {
  int s = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (s < 0) fail("cannot open a socket for the egress path");
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, kEgressAddress, &address.sin_addr);
  if (::bind(s, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      (type == SOCK_STREAM && ::listen(s, 128) != 0)) {
    int saved = errno;
    ::close(s);
    errno = saved;
    fail(std::string("cannot bind the egress path on ") + kEgressAddress + ":" +
         std::to_string(port));
  }
  return s;
}

// /.sprite: what the runtime shows the sprite about itself, read-only:
// its checkpoints (spec §7), its services' logs (spec §11) and its
// policies (spec §8.1: /.sprite/policy/network.json).
void mount_sprite_dir(const fs::path& sprite, const fs::path& target) {
  make_dir(target);
  mount_or_fail("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k");
  auto show = [](const fs::path& host, const fs::path& at) {
    make_dir(host);
    make_dir(at);
    mount_or_fail(host.c_str(), at, nullptr, MS_BIND | MS_REC);
    mount_or_fail(nullptr, at, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV);
  };
  show(sprite_dir::checkpoints(sprite), target / "checkpoints");
  show(sprite_dir::service_logs(sprite), target / "logs" / "services");
  show(sprite_dir::policy(sprite), target / "policy");
  mount_or_fail(nullptr, target, nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV);
}

}  // namespace

std::string host_home(const std::string& sprite_dir) {
  return (sprite_dir::layer(sprite_dir) / "home" / "sprite").string();
}

std::string host_root(const std::string& sprite_dir) {
  return sprite_dir::layer(sprite_dir).string();
}

int clone_into_namespaces() {
  int sync[2];
  if (::pipe2(sync, O_CLOEXEC) != 0) fail("cannot create a pipe");
  const uid_t uid = ::geteuid();
  const gid_t gid = ::getegid();
  // fork() semantics (no new stack) with new namespaces: the child is PID 1.
  long pid = ::syscall(SYS_clone,
                       CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS |
                           CLONE_NEWIPC | SIGCHLD,
                       nullptr, nullptr, nullptr, nullptr);
  if (pid < 0) {
    int saved = errno;
    ::close(sync[0]);
    ::close(sync[1]);
    errno = saved;
    fail(
        "cannot create the sprite's namespaces (are unprivileged user namespaces disabled? "
        "see docs/engine.md, or run 'spritescript serve --sandbox=none')");
  }
  if (pid == 0) {
    ::close(sync[1]);
    char ignored;
    while (::read(sync[0], &ignored, 1) < 0 && errno == EINTR) {
    }
    ::close(sync[0]);
    // The sandbox dies with the agent process that made it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    return 0;
  }
  ::close(sync[0]);
  const std::string proc = "/proc/" + std::to_string(pid);
  try {
    if (uid == 0) {
      // Root engine: identity map of the usual id range, so the host's
      // root-owned system files stay root's inside and copy up normally.
      write_proc_file(proc + "/uid_map", "0 0 65536\n");
      write_proc_file(proc + "/gid_map", "0 0 65536\n");
    } else {
      // Rootless: the engine's user is the sprite's root; nothing else maps.
      write_proc_file(proc + "/setgroups", "deny");
      write_proc_file(proc + "/uid_map", "0 " + std::to_string(uid) + " 1\n");
      write_proc_file(proc + "/gid_map", "0 " + std::to_string(gid) + " 1\n");
    }
  } catch (...) {
    ::kill(static_cast<pid_t>(pid), SIGKILL);
    ::waitpid(static_cast<pid_t>(pid), nullptr, 0);
    ::close(sync[1]);
    throw;
  }
  ::close(sync[1]);  // go on, child
  return static_cast<int>(pid);
}

void enter_sprite_root(const Options& options) {
  const fs::path layer = sprite_dir::layer(options.sprite_dir);
  const fs::path work = sprite_dir::work(options.sprite_dir);
  const fs::path root = fs::path(options.sprite_dir) / "fs" / "mnt";
  if (options.sprite_dir.find_first_of(",:") != std::string::npos) {
    errno = EINVAL;
    fail("the state dir path must not contain ',' or ':' (overlay options)");
  }
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    fail("cannot make mounts private");
  }
  make_dir(root);
  mount_or_fail("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1m");

  for (const char* name : kOverlaid) {
    const fs::path host = fs::path("/") / name;
    std::error_code ec;
    auto status = fs::symlink_status(host, ec);
    if (ec || !fs::exists(status)) continue;
    if (fs::is_symlink(status)) {  // merged /usr: bin -> usr/bin and friends
      fs::create_symlink(fs::read_symlink(host), root / name, ec);
      continue;
    }
    if (!fs::is_directory(status)) continue;
    make_dir(layer / name);
    fs::remove_all(work / name, ec);  // scratch; a stale one can block the mount
    make_dir(work / name);
    make_dir(root / name);
    mount_or_fail("overlay", root / name, "overlay", 0,
                  "lowerdir=" + host.string() + ",upperdir=" + (layer / name).string() +
                      ",workdir=" + (work / name).string() +
                      // user.overlay.* xattrs: inside a user namespace the
                      // trusted.* ones cannot be set, and without them removing
                      // a host directory (an opaque dir) fails with EIO.
                      ",userxattr");
  }
  make_dir(layer / "home" / "sprite");
  make_dir(layer / "tmp", 01777);
  for (const char* name : kOwn) {
    make_dir(layer / name);
    make_dir(root / name);
    mount_or_fail((layer / name).c_str(), root / name, nullptr, MS_BIND | MS_REC);
  }
  make_dir(root / "proc");
  mount_or_fail("proc", root / "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC);
  make_dir(root / "sys");
  if (::mount("sysfs", (root / "sys").c_str(), "sysfs",
              MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    ::mount("/sys", (root / "sys").c_str(), nullptr, MS_BIND | MS_REC, nullptr);  // best effort
  }
  mount_dev(root / "dev");
  make_dir(root / "run");
  mount_or_fail("tmpfs", root / "run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  mount_sprite_dir(options.sprite_dir, root / ".sprite");
  point_resolver_at_engine(root);

  const fs::path old_root = root / ".host";
  make_dir(old_root, 0700);
  if (::syscall(SYS_pivot_root, root.c_str(), old_root.c_str()) != 0) fail("cannot pivot_root");
  if (::chdir("/") != 0) fail("cannot chdir to the new root");
  if (::umount2("/.host", MNT_DETACH) != 0) fail("cannot detach the host's root");
  ::rmdir("/.host");
  // The assembled root's own tmpfs is read-only from now on: only the
  // mounted directories are writable, as on a real sprite's base image.
  ::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr);

  if (::sethostname(options.hostname.data(), options.hostname.size()) != 0) {
    fail("cannot set the hostname");
  }
  bring_up_loopback();
  name_the_host(options.hostname);
}

EgressSockets open_egress_sockets() {
  EgressSockets sockets;
  sockets.proxy = bound_socket(SOCK_STREAM, kProxyPort);
  sockets.dns = bound_socket(SOCK_DGRAM, kDnsPort);
  return sockets;
}

const char* const* proxy_environment() {
  static const std::string proxy =
      std::string("http://") + kEgressAddress + ":" + std::to_string(kProxyPort);
  // Loopback is the sprite's own: never through the proxy.
  static const std::string local = "localhost,127.0.0.1,::1,.localhost";
  static const std::string entries[] = {"http_proxy=" + proxy, "https_proxy=" + proxy,
                                        "HTTP_PROXY=" + proxy, "HTTPS_PROXY=" + proxy,
                                        "no_proxy=" + local,   "NO_PROXY=" + local};
  static const char* const pointers[] = {entries[0].c_str(),
                                         entries[1].c_str(),
                                         entries[2].c_str(),
                                         entries[3].c_str(),
                                         entries[4].c_str(),
                                         entries[5].c_str(),
                                         nullptr};
  return pointers;
}

}  // namespace spritescript::engine::sandbox
