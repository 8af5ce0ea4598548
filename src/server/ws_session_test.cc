#include "server/ws_session.h"

#include <gtest/gtest.h>

#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <future>
#include <thread>

#include "server/server_testutil.h"
#include "storage/committer.h"
#include "storage/memory_store.h"

// A real session on a loopback connection, its workspace in memory, read by
// Beast's client side. Every wait is for an event, never for a time.

namespace etherply::server {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
using Client = websocket::stream<boost::asio::ip::tcp::socket>;

std::string Message(int i, size_t size) {
  std::string m = std::to_string(i) + ":";
  m.resize(size, 'x');
  return m;
}

// A server of one session, a reader of workspace "w", on a loopback
// connection with small socket buffers (what the kernel holds is small
// beside the queue limit): the session's io_context runs on its own thread;
// the test thread is the client.
struct OneSession {
  explicit OneSession(size_t max_send_queue_bytes) {
    ctx->options.max_send_queue_bytes = max_send_queue_bytes;
    ctx->hub = &hub;
    server = std::thread([this] {
      beast::tcp_stream stream(std::move(net.server));
      beast::flat_buffer buffer;
      beast::http::request<beast::http::string_body> request;
      beast::http::read(stream, buffer, request);
      auto s = std::make_shared<WebSocketSession>(
          std::move(stream), ctx, hub.Get("w"),
          testutil::ClaimsFor("reader", auth::Scopes{auth::Scope::kRead}), "test-peer");
      s->Run(std::move(request));
      // Only handlers and the test hold it then: it ends inside run(), and
      // its Leave runs there too.
      session.set_value(std::move(s));
      net.io.run();
    });
  }
  ~OneSession() { server.join(); }

  testutil::Loopback net{/*client_rcvbuf=*/4096, /*server_sndbuf=*/4096};
  storage::MemoryStore store;
  storage::Committer committer{store};
  Hub hub{net.io.get_executor(), store, committer, automerge::ActorId(16, 7), nullptr, nullptr};
  std::shared_ptr<ServerContext> ctx = std::make_shared<ServerContext>();
  std::promise<std::shared_ptr<WebSocketSession>> session;
  std::thread server;
};

// The client reads nothing while the workspace sends it far more than 4x
// the limit: it is closed with 1008 at once (no stall time involved). When
// it reads again it finds whole messages, in order, fewer than were sent,
// then the close frame and nothing after it.
TEST(WebSocketSession, ClientFourTimesOverTheSendQueueLimitIsClosedWith1008) {
  constexpr size_t kLimit = 64 * 1024;
  constexpr int kMessages = 100;  // 100 x 16 KiB = 25x the limit
  constexpr size_t kSize = 16 * 1024;
  OneSession server(kLimit);
  Client ws(std::move(server.net.client));
  ws.handshake("127.0.0.1", "/v1/sync/w");
  beast::flat_buffer init;
  ws.read(init);
  EXPECT_NE(beast::buffers_to_string(init.data()).find("\"init\""), std::string::npos);
  {
    std::shared_ptr<WebSocketSession> session = server.session.get_future().get();
    for (int i = 0; i < kMessages; ++i)
      session->Send(std::make_shared<const std::string>(Message(i, kSize)));
  }
  int received = 0;
  beast::error_code end;
  for (;;) {
    beast::flat_buffer buffer;
    ws.read(buffer, end);
    if (end) break;
    ASSERT_EQ(beast::buffers_to_string(buffer.data()), Message(received, kSize))
        << "message " << received << " whole and in order";
    ++received;
  }
  EXPECT_EQ(end, websocket::error::closed);
  EXPECT_EQ(ws.reason().code, websocket::close_code::policy_error);  // 1008
  EXPECT_LT(received, kMessages);
}

// A client that reads gets every message, however many were queued at once,
// as long as the queue stays under 4x the limit and it keeps reading.
TEST(WebSocketSession, ClientThatReadsGetsEveryMessageInOrder) {
  constexpr int kMessages = 300;
  constexpr size_t kSize = 2000;  // copied and shared payloads alike: around kCopyBelow
  OneSession server(16 << 20);
  Client ws(std::move(server.net.client));
  ws.handshake("127.0.0.1", "/v1/sync/w");
  beast::flat_buffer init;
  ws.read(init);
  {
    std::shared_ptr<WebSocketSession> session = server.session.get_future().get();
    for (int i = 0; i < kMessages; ++i)
      session->Send(std::make_shared<const std::string>(Message(i, i % 2 ? kSize : 100)));
  }
  for (int i = 0; i < kMessages; ++i) {
    beast::flat_buffer buffer;
    ws.read(buffer);
    ASSERT_TRUE(ws.got_text());
    ASSERT_EQ(beast::buffers_to_string(buffer.data()), Message(i, i % 2 ? kSize : 100));
  }
  ws.close(websocket::close_code::normal);
}

}  // namespace
}  // namespace etherply::server
