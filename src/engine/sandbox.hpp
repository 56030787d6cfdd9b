// A sprite's sandbox, as the agent builds it from inside: Linux user, mount,
// pid, uts, ipc and network namespaces, and a root filesystem made of
// overlays over the host's system directories whose upper layers live in the
// sprite's own directory (docs/engine.md, "Sandbox").
//
//   <sprite dir>/fs/layer/   the sprite's writable layer: usr etc opt var ...
//                            (overlay uppers), home/sprite root tmp (plain)
//   <sprite dir>/fs/work/    overlay work directories (scratch)
//   <sprite dir>/fs/mnt/     where the new root is assembled
//
//   <sprite dir>/checkpoints/ and logs/services/: shown read-only at
//                            /.sprite/checkpoints and /.sprite/logs/services
//
// Checkpoints copy fs/layer and nothing else.
//
// The network namespace has loopback only. The engine's egress path is two
// sockets the agent opens inside it and hands over: an HTTP proxy and a DNS
// resolver, both on kEgressAddress (docs/networking.md, "Egress").
#pragma once

#include <string>

namespace spritescript::engine::sandbox {

// Inside every sprite: the engine's resolver (53/udp; /etc/resolv.conf
// names it) and HTTP proxy (3128/tcp; http_proxy and friends name it).
constexpr const char* kEgressAddress = "127.0.0.53";
constexpr int kDnsPort = 53;
constexpr int kProxyPort = 3128;

struct Options {
  std::string sprite_dir;  // absolute
  std::string hostname;    // the sprite's name
};

// The sprite's home as the host sees it (also HOME with --sandbox=none).
std::string host_home(const std::string& sprite_dir);
// With --sandbox=none, what stands for the sprite's root (its layer): where
// the filesystem API resolves paths.
std::string host_root(const std::string& sprite_dir);

// Creates the namespaces: returns in the parent with the pid of the child,
// which is PID 1 of the new pid namespace and returns 0. The parent has
// already written the child's uid/gid maps when this returns. Throws
// std::runtime_error (one line: what failed and what to do) when the kernel
// refuses.
int clone_into_namespaces();

// In the child: mounts the sprite's root filesystem, pivots into it, sets
// the hostname and brings up loopback. Throws std::runtime_error.
void enter_sprite_root(const Options& options);

// In the child, after enter_sprite_root: the egress sockets, bound in the
// sprite's network namespace (the engine serves them from outside).
struct EgressSockets {
  int proxy = -1;  // TCP, listening on kEgressAddress:kProxyPort
  int dns = -1;    // UDP, bound to kEgressAddress:kDnsPort
};
EgressSockets open_egress_sockets();

// The environment every process in an isolated sprite gets (unless the
// request sets the variable itself): http_proxy, https_proxy, no_proxy and
// their upper-case forms.
const char* const* proxy_environment();

}  // namespace spritescript::engine::sandbox
