#include "server/workspace.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <mutex>

#include "storage/memory_store.h"

namespace etherply::server {
namespace {

// A client that keeps what the workspace sends it.
class FakeClient : public Client {
 public:
  void Send(std::shared_ptr<const std::string> message) override {
    std::lock_guard lock(mu_);
    messages_.push_back(*message);
  }
  void Close(uint16_t, std::string_view) override {}
  std::vector<std::string> messages() {
    std::lock_guard lock(mu_);
    return messages_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> messages_;
};

auth::Claims Writer() {
  auth::Claims c;
  c.sub = "alice";
  c.scopes = auth::Scopes{auth::Scope::kWrite};
  c.workspaces = {"*"};
  return c;
}

OpMessage Op(std::string key, int64_t value) {
  return OpMessage{std::move(key), boost::json::value(value), 1};
}

// Runs the io_context until the workspace has nothing left to do (the
// committer thread posts back to it, so poll until quiet).
void Settle(boost::asio::io_context& io) {
  for (int quiet = 0; quiet < 20;) {
    io.restart();
    quiet = io.poll() == 0 ? quiet + 1 : 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

struct Fixture {
  boost::asio::io_context io;
  storage::MemoryStore store;
  storage::Committer committer{store};
  Hub hub{io.get_executor(), store, committer, automerge::ActorId(16, 7), nullptr};
};

TEST(Workspace, OpIsStoredThenBroadcastToEveryClient) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = std::make_shared<FakeClient>(), b = std::make_shared<FakeClient>();
  ws->Join(a);
  ws->Join(b);
  ws->SubmitOp(a, Writer(), Op("k", 1));
  Settle(f.io);
  ASSERT_EQ(a->messages().size(), 2u);
  EXPECT_EQ(a->messages()[1], "{\"type\":\"op\",\"payload\":{\"key\":\"k\",\"value\":1,\"timestamp\":1}}");
  EXPECT_EQ(b->messages(), a->messages());
  EXPECT_EQ(f.store.writes(), 1u);
}

TEST(Workspace, FailedWriteAnswers500BroadcastsNothingAndMemoryEqualsDisk) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = std::make_shared<FakeClient>(), b = std::make_shared<FakeClient>();
  ws->Join(a);
  ws->Join(b);
  ws->SubmitOp(a, Writer(), Op("kept", 1));
  Settle(f.io);
  f.store.FailWritesAfter(0);
  ws->SubmitOp(a, Writer(), Op("lost", 2));
  Settle(f.io);
  // The sender is told; nobody sees the op.
  auto am = a->messages();
  ASSERT_EQ(am.size(), 3u);
  EXPECT_NE(am[2].find("\"code\":500"), std::string::npos) << am[2];
  EXPECT_EQ(b->messages().size(), 2u);
  // The store works again: the next op is stored and broadcast, and a new
  // client's init shows exactly what is on disk (no "lost").
  f.store.FailWritesAfter(-1);
  ws->SubmitOp(a, Writer(), Op("after", 3));
  Settle(f.io);
  auto c = std::make_shared<FakeClient>();
  ws->Join(c);
  Settle(f.io);
  ASSERT_FALSE(c->messages().empty());
  EXPECT_NE(c->messages()[0].find("\"data\":{\"after\":3,\"kept\":1}"), std::string::npos)
      << c->messages()[0];
  EXPECT_EQ(b->messages().size(), 3u);
}

TEST(Workspace, ReadOnlyClientGets403AndNothingIsStored) {
  Fixture f;
  auto ws = f.hub.Get("w");
  auto a = std::make_shared<FakeClient>();
  ws->Join(a);
  auth::Claims reader = Writer();
  reader.scopes = auth::Scopes{auth::Scope::kRead};
  ws->SubmitOp(a, reader, Op("k", 1));
  Settle(f.io);
  ASSERT_EQ(a->messages().size(), 2u);
  EXPECT_NE(a->messages()[1].find("\"code\":403"), std::string::npos);
  EXPECT_EQ(f.store.writes(), 0u);
}

}  // namespace
}  // namespace etherply::server
