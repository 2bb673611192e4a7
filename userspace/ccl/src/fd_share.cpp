// SPDX-License-Identifier: MIT
// Passing a dma-buf between the MPI ranks of one machine: each rank listens on a Unix
// socket of the abstract namespace, the names go round with MPI, and in round k rank k
// hands its fd (SCM_RIGHTS) to every peer that connects. Connecting never blocks (the
// listen backlog holds every peer), so the rounds cannot deadlock; every wait is bounded.
#include "fd_share.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstring>

namespace kiln::ccl::detail {

namespace {

constexpr int kWaitMs = 10000;
constexpr int kNameLen = 64;

class UniqueFd {
 public:
  explicit UniqueFd(int fd = -1) noexcept : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_;
};

// An abstract-namespace address: no file to clean up, gone with the socket.
socklen_t abstract_address(const char* name, sockaddr_un& a) {
  a = {};
  a.sun_family = AF_UNIX;
  size_t len = std::min(std::strlen(name), sizeof a.sun_path - 2);
  std::memcpy(a.sun_path + 1, name, len);
  return socklen_t(offsetof(sockaddr_un, sun_path) + 1 + len);
}

bool wait_readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, kWaitMs) == 1 && (p.revents & POLLIN);
}

// One byte with room for one fd beside it: what SCM_RIGHTS needs on both sides.
struct FdMessage {
  FdMessage() {
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
  }
  FdMessage(const FdMessage&) = delete;
  FdMessage& operator=(const FdMessage&) = delete;
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) std::array<char, CMSG_SPACE(sizeof(int))> control{};
  msghdr msg{};
};

bool send_fd(int sock, int fd) {
  FdMessage m;
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fd, sizeof fd);
  return ::sendmsg(sock, &m.msg, MSG_NOSIGNAL) == 1;
}

int recv_fd(int sock) {
  if (!wait_readable(sock)) return -1;
  FdMessage m;
  if (::recvmsg(sock, &m.msg, MSG_CMSG_CLOEXEC) != 1) return -1;
  cmsghdr* c = CMSG_FIRSTHDR(&m.msg);
  if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int)))
    return -1;
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

bool all(MPI_Comm comm, bool mine) {
  int in = mine, out = 0;
  return MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_MIN, comm) == MPI_SUCCESS && out;
}

}  // namespace

std::pair<std::vector<int>, bool> share_fds(MPI_Comm node, int fd) {
  static std::atomic<unsigned> serial{0};
  int me = 0, n = 1;
  MPI_Comm_rank(node, &me);
  MPI_Comm_size(node, &n);
  std::vector<int> got(size_t(n), -1);

  std::array<char, kNameLen> name{};
  std::snprintf(name.data(), name.size(), "kiln-ccl.%d.%u", int(::getpid()), serial++);
  sockaddr_un addr;
  socklen_t addr_len = abstract_address(name.data(), addr);
  UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  bool ok = listener.get() >= 0 && ::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), addr_len) == 0 &&
            ::listen(listener.get(), n) == 0;
  std::vector<char> names(size_t(n) * kNameLen);
  if (MPI_Allgather(name.data(), kNameLen, MPI_CHAR, names.data(), kNameLen, MPI_CHAR, node) != MPI_SUCCESS)
    ok = false;
  if (!all(node, ok)) return {got, false};

  for (int k = 0; k < n; k++) {
    if (k == me) {
      for (int i = 0; i + 1 < n; i++) {
        if (!wait_readable(listener.get())) {
          ok = false;
          break;
        }
        UniqueFd peer(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (peer.get() < 0 || !send_fd(peer.get(), fd)) ok = false;
      }
      continue;
    }
    UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    socklen_t len = abstract_address(&names[size_t(k) * kNameLen], addr);
    if (sock.get() >= 0 && ::connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0)
      got[size_t(k)] = recv_fd(sock.get());
    if (got[size_t(k)] < 0) ok = false;
  }
  return {got, all(node, ok)};
}

}  // namespace kiln::ccl::detail
