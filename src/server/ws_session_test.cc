#include "server/ws_session.h"

#include <gtest/gtest.h>

#include <boost/asio/strand.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "automerge/document.h"
#include "automerge/transaction.h"
#include "server/server_testutil.h"
#include "storage/committer.h"
#include "storage/layout.h"
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

// A server of one session of workspace "w" (a reader unless `scopes` say
// otherwise), on a loopback connection with small socket buffers (what the
// kernel holds is small beside the queue limit): the session's io_context
// runs on two threads of its own, as a server's does (a network thread that
// leads a write waits for the disk); the test thread is the client.
struct OneSession {
  explicit OneSession(ServerOptions options, auth::Scopes scopes = auth::Scopes{auth::Scope::kRead})
      : OneSession(std::move(options), testutil::ClaimsFor("client", scopes)) {}
  OneSession(ServerOptions options, auth::Claims claims) {
    ctx->options = std::move(options);
    ctx->hub = &hub;
    server = std::thread([this, claims = std::move(claims)] {
      // On a strand, as the server accepts it: two threads run the io_context.
      boost::asio::ip::tcp::socket socket(boost::asio::make_strand(net.io),
                                          boost::asio::ip::tcp::v4(), net.server.release());
      beast::tcp_stream stream(std::move(socket));
      beast::flat_buffer buffer;
      beast::http::request<beast::http::string_body> request;
      beast::http::read(stream, buffer, request);
      auto s = std::make_shared<WebSocketSession>(std::move(stream), ctx, hub.Get("w"), claims,
                                                  "test-peer");
      s->Run(std::move(request));
      // Only handlers and the test hold it then: it ends inside run(), and
      // its Leave runs there too.
      session.set_value(std::move(s));
      std::thread second([this] { net.io.run(); });
      net.io.run();
      second.join();
    });
  }
  ~OneSession() {
    server.join();
    // A session no test took is still held by the promise: its Leave, posted
    // as it goes, must run before the workspace's hub goes.
    session = {};
    net.io.restart();
    net.io.poll();
  }

  testutil::Loopback net{/*client_rcvbuf=*/4096, /*server_sndbuf=*/4096};
  storage::MemoryStore store;
  storage::Committer committer{store};
  Hub hub{net.io.get_executor(), store, committer, automerge::ActorId(16, 7), nullptr, nullptr};
  std::shared_ptr<ServerContext> ctx = std::make_shared<ServerContext>();
  std::promise<std::shared_ptr<WebSocketSession>> session;
  std::thread server;
};

// The test's client of `server`, past the handshake and its init message.
Client Connect(OneSession& server) {
  Client ws(std::move(server.net.client));
  ws.handshake("127.0.0.1", "/v1/sync/w");
  beast::flat_buffer init;
  ws.read(init);
  EXPECT_NE(beast::buffers_to_string(init.data()).find("\"init\""), std::string::npos);
  return ws;
}

// A session ends when its token does (exp plus the handshake's leeway):
// closed with 1008, the reason saying why.
TEST(WebSocketSession, SessionIsClosedWhenItsTokenExpires) {
  auth::Claims claims = testutil::ClaimsFor("client", auth::Scopes{auth::Scope::kRead});
  claims.exp -= 3600 + auth::kLeewaySeconds - 2;  // valid for 2 to 3 more seconds
  OneSession server(ServerOptions{}, claims);
  auto start = std::chrono::steady_clock::now();
  Client ws = Connect(server);
  beast::flat_buffer buffer;
  beast::error_code end;
  ws.read(buffer, end);
  // Not before the token's end (exp plus the leeway): at least a second on.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  EXPECT_EQ(end, websocket::error::closed);
  EXPECT_EQ(ws.reason().code, websocket::close_code::policy_error);  // 1008
  EXPECT_EQ(ws.reason().reason, "the token expired");
}

// Once the server is stopping, a message to a session closes it with 1001
// instead: a session whose join came after Hub::CloseClients told the
// others is told at its first message (here a 403, the one whose arrival
// is in the test's hands).
TEST(WebSocketSession, MessageToASessionOfAStoppingServerClosesItWith1001) {
  OneSession server(ServerOptions{});
  Client ws = Connect(server);
  server.ctx->stopping = true;
  ws.write(boost::asio::buffer(std::string(R"({"type":"op","payload":{"key":"k","value":1}})")));
  beast::flat_buffer buffer;
  beast::error_code end;
  ws.read(buffer, end);
  EXPECT_EQ(beast::buffers_to_string(buffer.data()), "") << "the 403 is not sent";
  EXPECT_EQ(end, websocket::error::closed);
  EXPECT_EQ(ws.reason().code, websocket::close_code::going_away);  // 1001
  EXPECT_EQ(ws.reason().reason, "the server is shutting down");
}

// The client reads nothing while the workspace sends it far more than 4x
// the limit: it is closed with 1008 at once (no stall time involved). When
// it reads again it finds whole messages, in order, fewer than were sent,
// then the close frame and nothing after it.
TEST(WebSocketSession, ClientFourTimesOverTheSendQueueLimitIsClosedWith1008) {
  constexpr size_t kLimit = 64 * 1024;
  constexpr int kMessages = 100;  // 100 x 16 KiB = 25x the limit
  constexpr size_t kSize = 16 * 1024;
  ServerOptions options;
  options.max_send_queue_bytes = kLimit;
  OneSession server(options);
  Client ws = Connect(server);
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

// The init of a workspace larger than 4x the limit arrives whole; once it
// is written, the client is held to the bounds of any other: one that then
// reads nothing is closed at 4x, not 4x plus the init.
TEST(WebSocketSession, AnInitOverFourTimesTheLimitArrivesThenTheUsualBoundsHold) {
  constexpr size_t kLimit = 64 * 1024;
  constexpr size_t kSize = 16 * 1024;
  ServerOptions options;
  options.max_send_queue_bytes = kLimit;
  OneSession server(options);
  {  // The workspace's state, stored before the client joins: 5x the limit.
    automerge::Document doc;
    automerge::Transaction tx(doc, automerge::ActorId(16, 1));
    ASSERT_TRUE(
        tx.Put(automerge::kRoot, "big", automerge::ScalarValue{std::string(5 * kLimit, 'b')}).ok());
    ASSERT_TRUE(tx.Commit().ok());
    storage::WriteBatch batch;
    batch.Put(storage::ChangeKey("w", 0), std::string(AsChars(doc.changes().bytes(0))));
    ASSERT_TRUE(server.store.Write(batch).ok());
  }
  Client ws = Connect(server);  // the init, read whole
  {
    // 320 KiB queued while the client reads nothing: over 4x the limit, not
    // over 4x plus the init. Then, later, one more message.
    std::shared_ptr<WebSocketSession> session = server.session.get_future().get();
    for (int i = 0; i < 20; ++i)
      session->Send(std::make_shared<const std::string>(Message(i, kSize)));
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    session->Send(std::make_shared<const std::string>("after"));
  }
  beast::error_code end;
  for (;;) {
    beast::flat_buffer buffer;
    ws.read(buffer, end);
    if (end) break;
    ASSERT_NE(beast::buffers_to_string(buffer.data()), "after")
        << "the client was not closed at 4x the limit";
  }
  EXPECT_EQ(ws.reason().code, websocket::close_code::policy_error);  // 1008
}

// A client that sends pings and reads nothing makes the server queue pongs
// no one takes: at 4x the limit the connection is closed, and the client's
// sending fails long before all its pings are taken.
TEST(WebSocketSession, ClientThatPingsAndNeverReadsIsClosedAtFourTimesTheLimit) {
  constexpr size_t kLimit = 16 * 1024;
  constexpr int kPings = 20000;  // 20,000 pongs of 127 bytes: 38x the 4x limit
  ServerOptions options;
  options.max_send_queue_bytes = kLimit;
  OneSession server(options);
  Client ws = Connect(server);
  websocket::ping_data payload(std::string(125, 'p').c_str());
  beast::error_code ec;
  int sent = 0;
  while (sent < kPings && !ec) {
    ws.ping(payload, ec);
    if (!ec) ++sent;
  }
  EXPECT_TRUE(ec) << "all " << sent << " pings were taken";
  EXPECT_LT(sent, kPings);
  server.session.get_future().get().reset();  // the session ends once its handlers are done
  ASSERT_TRUE(testutil::Eventually([&] { return server.ctx->connections.load() == 0; }));
}

// A client that reads gets every message, however many were queued at once,
// as long as the queue stays under 4x the limit and it keeps reading.
TEST(WebSocketSession, ClientThatReadsGetsEveryMessageInOrder) {
  constexpr int kMessages = 300;
  constexpr size_t kSize = 2000;  // copied and shared payloads alike: around kCopyBelow
  OneSession server(ServerOptions{});
  Client ws = Connect(server);
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

// The root keys of the workspace's document, once all it holds is durable.
size_t KeysOf(Workspace& workspace) {
  std::promise<size_t> keys;
  workspace.Read(
      [](const automerge::Document& doc) -> Result<std::string> {
        return std::to_string(doc.RootKeys().size());
      },
      [&](Result<std::string> r) { keys.set_value(r.ok() ? std::stoul(*r) : SIZE_MAX); });
  return keys.get_future().get();
}

// The disk stalls while a client sends ten ops: the server reads ops until
// those waiting reach max_inflight_op_bytes (each counts its message, about
// 45 bytes, and 256: the fourth reaches 1,000), then pauses. Once the disk
// is back, every op is stored and broadcast, in order, and reading resumes.
TEST(WebSocketSession, ReadsPauseWhileTheClientsOpsWaitForTheDisk) {
  constexpr int kOps = 10;
  ServerOptions options;
  options.max_inflight_op_bytes = 1000;
  OneSession server(options, auth::Scopes{auth::Scope::kWrite});
  Client ws = Connect(server);
  std::shared_ptr<WebSocketSession> session = server.session.get_future().get();
  std::shared_ptr<Workspace> workspace = server.hub.Get("w");

  server.store.HoldWrites();
  auto op = [](int i) {
    return "{\"type\":\"op\",\"payload\":{\"key\":\"k" + std::to_string(i) +
           "\",\"value\":" + std::to_string(i) + "}}";
  };
  for (int i = 0; i < kOps; ++i) ws.write(boost::asio::buffer(op(i)));
  ASSERT_TRUE(testutil::Eventually([&] { return server.ctx->reads_paused.load() == 1; }));
  EXPECT_EQ(server.store.writes(), 0u);

  server.store.ResumeWrites();
  for (int i = 0; i < kOps; ++i) {
    beast::flat_buffer buffer;
    ws.read(buffer);
    std::string message = beast::buffers_to_string(buffer.data());
    ASSERT_NE(message.find("\"key\":\"k" + std::to_string(i) + "\""), std::string::npos)
        << "broadcast " << i << ": " << message;
  }
  EXPECT_TRUE(testutil::Eventually([&] { return server.ctx->reads_paused.load() == 0; }));
  EXPECT_EQ(KeysOf(*workspace), size_t{kOps});
  ws.close(websocket::close_code::normal);
}

// Messages the server refuses are answered in their turn: each error after
// the broadcasts of the ops sent before it, while the disk stalls those ops.
// Until answered they count as in flight, as ops do: the fourth message
// (two ops of about 45 bytes, two bad ones, each and 256) reaches 1,000 and
// reading pauses.
TEST(WebSocketSession, BadMessagesAreAnsweredInTurnAndCountAsInFlight) {
  ServerOptions options;
  options.max_inflight_op_bytes = 1000;
  OneSession server(options, auth::Scopes{auth::Scope::kWrite});
  Client ws = Connect(server);

  server.store.HoldWrites();
  ws.write(boost::asio::buffer(std::string(R"({"type":"op","payload":{"key":"k0","value":0}})")));
  ws.write(boost::asio::buffer(std::string("nope")));
  ws.write(boost::asio::buffer(std::string(R"({"type":"op","payload":{"key":"k1","value":1}})")));
  ws.binary(true);
  ws.write(boost::asio::buffer(std::string("b")));
  ASSERT_TRUE(testutil::Eventually([&] { return server.ctx->reads_paused.load() == 1; }));

  server.store.ResumeWrites();
  std::vector<std::string> expected = {"\"key\":\"k0\"", "\"code\":400", "\"key\":\"k1\"",
                                       "binary messages are not supported"};
  for (const std::string& e : expected) {
    beast::flat_buffer buffer;
    ws.read(buffer);
    std::string message = beast::buffers_to_string(buffer.data());
    EXPECT_NE(message.find(e), std::string::npos) << message << " lacks " << e;
  }
  EXPECT_TRUE(testutil::Eventually([&] { return server.ctx->reads_paused.load() == 0; }));
  ws.close(websocket::close_code::normal);
}

}  // namespace
}  // namespace etherply::server
