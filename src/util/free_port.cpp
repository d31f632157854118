#include "mipin/util/free_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mipin/util/error.h"

namespace mipin {

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  MIPIN_CHECK(fd >= 0, "cannot open a socket: ", std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof(addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0;
  const int error = errno;
  close(fd);
  MIPIN_CHECK(ok, "cannot find a free port: ", std::strerror(error));
  return ntohs(addr.sin_port);
}

}  // namespace mipin
