// The engine <-> agent protocol. The agent (`spritescript agent`) is PID 1
// inside a sprite's sandbox; the engine holds the other end of a
// SOCK_SEQPACKET unix socket pair. One packet = one JSON object, plus file
// descriptors as SCM_RIGHTS: a spawned process's pipes (or pty master) go
// straight to the engine, which then reads and writes them itself, so exec
// output never passes through the agent.
//
// engine -> agent
//   {"op":"spawn","req":N,"argv":[...],"path":P,"env":[...],"dir":D,
//    "tty":B,"rows":R,"cols":C}
//       -> {"req":N,"pid":PID} + fds [stdin, stdout, stderr] or [pty master]
//       -> {"req":N,"error":MESSAGE}
//   {"op":"connect","req":N,"host":IP,"port":P}   a TCP connection made inside
//                                                  the sandbox (the TCP proxy)
//       -> {"req":N} + fd [socket, non-blocking, connected]
//       -> {"req":N,"pending":true} + fd [socket, connect in progress]
//       -> {"req":N,"error":MESSAGE}              (strerror: refused, ...)
//   {"op":"signal","pid":PID,"signal":SIGNO}      to the process group
//   {"op":"freeze"} / {"op":"thaw"}                SIGSTOP / SIGCONT everything
//   {"op":"freeze","req":N} -> {"req":N}           once every process stopped
// agent -> engine
//   {"event":"ready","pid":HOST_PID} + fd [root]   the sandbox is up; `root`
//                                                  is its / (O_PATH), for
//                                                  the filesystem API
//       + fds [root, proxy, dns] when isolated:    the egress sockets, bound
//                                                  in the sandbox's network
//                                                  namespace (sandbox.hpp)
//   {"event":"failed","error":MESSAGE}             it could not be set up
//   {"event":"exit","pid":PID,"code":C}            a spawned process ended
//                                                  (C = status, or 128+signo)
#pragma once

#include <boost/json/object.hpp>

#include <string>
#include <vector>

namespace spritescript::engine::agent_protocol {

constexpr std::size_t kMaxPacket = std::size_t{1024} * 1024;  // argv + env of one spawn
constexpr std::size_t kMaxFds = 4;

enum class Sent { ok, would_block, failed };

// Blocking or not as the socket is: would_block only on a non-blocking
// socket whose peer has not read enough yet; failed when the peer is gone.
Sent try_send(int socket, const boost::json::object& message, const std::vector<int>& fds = {});
// try_send() == Sent::ok.
bool send(int socket, const boost::json::object& message, const std::vector<int>& fds = {});

enum class Received { message, would_block, closed, malformed };

// Receives one packet. Descriptors that arrive are returned in `fds` (owned
// by the caller), even when the JSON is malformed.
Received receive(int socket, boost::json::object& message, std::vector<int>& fds);

}  // namespace spritescript::engine::agent_protocol
