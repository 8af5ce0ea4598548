// Helpers shared by the server's unit tests (only test code includes this).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "auth/jwt.h"

namespace etherply::server::testutil {

// The claims of a token of `sub` with `scopes`, for every workspace.
inline auth::Claims ClaimsFor(std::string sub, auth::Scopes scopes) {
  auth::Claims c;
  c.sub = std::move(sub);
  c.scopes = scopes;
  c.workspaces = {"*"};
  // An hour from now: a session closes when its token expires.
  c.exp = std::chrono::duration_cast<std::chrono::seconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count() +
          3600;
  return c;
}

// A loopback TCP connection: `server` on `io`, `client` on `client_io` (for
// blocking use on a client thread). Small buffers (bytes; 0: the kernel's
// default) make the server's writes block and come back partial.
struct Loopback {
  explicit Loopback(int client_rcvbuf = 0, int server_sndbuf = 0) {
    using boost::asio::ip::tcp;
    tcp::acceptor acceptor(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    if (client_rcvbuf > 0) {  // before connect: the window is agreed then
      client.open(tcp::v4());
      client.set_option(boost::asio::socket_base::receive_buffer_size(client_rcvbuf));
    }
    client.connect(acceptor.local_endpoint());
    server = acceptor.accept();
    if (server_sndbuf > 0)
      server.set_option(boost::asio::socket_base::send_buffer_size(server_sndbuf));
  }
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket server{io};
  boost::asio::io_context client_io;
  boost::asio::ip::tcp::socket client{client_io};
};

// Waits until `done` holds (polled each millisecond, for another thread's
// doing), for at most 10 s; whether it came to hold.
inline bool Eventually(const std::function<bool()>& done) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace etherply::server::testutil
