#include "engine/agent_protocol.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <cerrno>
#include <cstring>

namespace spritescript::engine::agent_protocol {

bool send(int socket, const boost::json::object& message, const std::vector<int>& fds) {
  return try_send(socket, message, fds) == Sent::ok;
}

Sent try_send(int socket, const boost::json::object& message, const std::vector<int>& fds) {
  std::string text = boost::json::serialize(message);
  if (text.size() > kMaxPacket || fds.size() > kMaxFds) return Sent::failed;
  iovec iov{text.data(), text.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  if (!fds.empty()) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cm = CMSG_FIRSTHDR(&msg);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cm), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    ssize_t n = ::sendmsg(socket, &msg, MSG_NOSIGNAL);
    if (n >= 0) return Sent::ok;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return Sent::would_block;
    if (errno != EINTR) return Sent::failed;
  }
}

Received receive(int socket, boost::json::object& message, std::vector<int>& fds) {
  static thread_local std::vector<char> buffer(kMaxPacket);
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n < 0)
    return errno == EAGAIN || errno == EWOULDBLOCK ? Received::would_block : Received::closed;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
      std::size_t count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
        fds.push_back(fd);
      }
    }
  }
  if (n == 0) return Received::closed;  // SOCK_SEQPACKET: zero bytes = the peer closed
  boost::system::error_code ec;
  auto value = boost::json::parse(std::string_view(buffer.data(), static_cast<std::size_t>(n)), ec);
  if (ec || !value.is_object() || (msg.msg_flags & MSG_TRUNC)) return Received::malformed;
  message = std::move(value.as_object());
  return Received::message;
}

}  // namespace spritescript::engine::agent_protocol
