#include "server/gather_write_stream.h"

#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>
#include <future>
#include <thread>

#include "server/server_testutil.h"
#include "server/ws_frame.h"

// The layer is tested the way a session uses it: Beast's server side over a
// GatherWriteStream, with frames of our own appended beside Beast's, read by
// an independent client (Beast's client side, blocking, on its own thread,
// or a raw socket). Every wait is for an event, never for a time.

namespace etherply::server {
namespace {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using ServerSocket = websocket::stream<GatherWriteStream, false>;
using testutil::Loopback;

// A payload whose every byte tells where it is: a cut or shifted frame
// does not compare equal.
std::shared_ptr<const std::string> Payload(size_t size, int seed) {
  auto s = std::make_shared<std::string>(size, '\0');
  for (size_t i = 0; i < size; ++i) (*s)[i] = static_cast<char>('a' + (i + seed) % 26);
  return s;
}

// What a Beast client read: text messages and the pings and pongs between
// them, in arrival order, then how it ended.
struct ClientLog {
  std::vector<std::string> events;  // "msg:<payload>", "ping:<payload>", "pong:<payload>"
  beast::error_code end;            // the read that ended it
  uint16_t close_code = 0;
};

// Handshakes as a client, pings the server `pings` times, waits for `go`,
// then reads until the connection closes.
ClientLog RunClient(tcp::socket socket, int pings, std::shared_future<void> go) {
  ClientLog log;
  websocket::stream<tcp::socket> ws(std::move(socket));
  ws.handshake("127.0.0.1", "/");
  ws.control_callback([&log](websocket::frame_type kind, beast::string_view payload) {
    if (kind == websocket::frame_type::close) return;  // see ClientLog::close_code
    const char* name = kind == websocket::frame_type::ping ? "ping:" : "pong:";
    log.events.push_back(name + std::string(payload));
  });
  for (int i = 0; i < pings; ++i) ws.ping(websocket::ping_data(("c" + std::to_string(i)).c_str()));
  go.wait();
  for (;;) {
    beast::flat_buffer buffer;
    ws.read(buffer, log.end);
    if (log.end) break;
    if (!ws.got_text()) log.events.push_back("binary!");
    log.events.push_back("msg:" + beast::buffers_to_string(buffer.data()));
  }
  log.close_code = ws.reason().code;
  return log;
}

// --- frames of our own --------------------------------------------------------

TEST(GatherWriteStream, FramesOfEveryLengthFormAreReadByBeastAsTextMessages) {
  const std::vector<size_t> sizes = {0, 1, 125, 126, 511, 512, 65535, 65536, 200000};
  Loopback net_;
  std::promise<void> go;
  go.set_value();
  auto client =
      std::async(std::launch::async, RunClient, std::move(net_.client), 0, go.get_future().share());
  ServerSocket ws(beast::tcp_stream(std::move(net_.server)));
  net::co_spawn(
      net_.io,
      [&]() -> net::awaitable<void> {
        co_await ws.async_accept(net::use_awaitable);
        for (size_t i = 0; i < sizes.size(); ++i) {
          auto payload = Payload(sizes[i], static_cast<int>(i));
          ws.next_layer().Append(EncodeTextFrameHeader(payload->size()).view(), payload);
        }
        ws.next_layer().StartWrite();
        co_await ws.async_close(websocket::close_code::normal, net::use_awaitable);
      },
      net::detached);
  net_.io.run();
  ClientLog log = client.get();
  ASSERT_EQ(log.events.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i)
    EXPECT_EQ(log.events[i], "msg:" + *Payload(sizes[i], static_cast<int>(i))) << "frame " << i;
  EXPECT_EQ(log.end, websocket::error::closed);
  EXPECT_EQ(log.close_code, websocket::close_code::normal);
}

// --- Beast's frames and ours -----------------------------------------------------

// The server appends frames and pings between them while the client, which
// pinged it (Beast's read answers each with a pong), does not read: the
// socket fills, writes come back partial, and Beast's writes must still
// complete at once. Then the client reads everything: whole frames, in the
// order they were written, the pongs somewhere among them, the close last.
TEST(GatherWriteStream, BeastControlFramesAndOursArriveWholeAndInOrderUnderASlowReader) {
  constexpr int kFrames = 60;
  constexpr int kClientPings = 3;
  Loopback net_(/*client_rcvbuf=*/4096, /*server_sndbuf=*/4096);
  std::promise<void> go;
  auto client = std::async(std::launch::async, RunClient, std::move(net_.client), kClientPings,
                           go.get_future().share());
  ServerSocket ws(beast::tcp_stream(std::move(net_.server)));
  // An event, not a time: cancelled once the server has read every ping
  // of the client (Beast queues the pong right after telling us).
  net::steady_timer pinged(net_.io, net::steady_timer::time_point::max());
  int pings_read = 0;
  ws.control_callback([&](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::ping && ++pings_read == kClientPings) pinged.cancel();
  });
  beast::flat_buffer read_buffer;
  net::co_spawn(
      net_.io,
      [&]() -> net::awaitable<void> {
        co_await ws.async_accept(net::use_awaitable);
        // A read in progress answers the client's pings (and its close).
        ws.async_read(read_buffer, [](beast::error_code, size_t) {});
        for (int i = 0; i < kFrames; ++i) {
          // Sizes across the copy threshold and the length forms.
          auto payload = Payload((i * 7919) % 70000, i);
          ws.next_layer().Append(EncodeTextFrameHeader(payload->size()).view(), payload);
          ws.next_layer().StartWrite();
          // Completes while the client reads nothing: the layer took it.
          co_await ws.async_ping(websocket::ping_data(("s" + std::to_string(i)).c_str()),
                                 net::use_awaitable);
        }
        EXPECT_GT(ws.next_layer().queued_bytes(), 0u) << "the socket should be full";
        if (pings_read < kClientPings)
          co_await pinged.async_wait(net::as_tuple(net::use_awaitable));
        go.set_value();  // the client starts reading
        co_await ws.async_close(websocket::close_code::going_away, net::use_awaitable);
      },
      net::detached);
  net_.io.run();
  ClientLog log = client.get();

  // Our frames and the server's pings, in the order written; the pongs to
  // the client's pings anywhere among them.
  std::vector<std::string> written, ours, pongs;
  for (int i = 0; i < kFrames; ++i) {
    written.push_back("msg:" + *Payload((i * 7919) % 70000, i));
    written.push_back("ping:s" + std::to_string(i));
  }
  for (const std::string& e : log.events) (e.rfind("pong:", 0) == 0 ? pongs : ours).push_back(e);
  ASSERT_EQ(ours.size(), written.size());
  for (size_t i = 0; i < written.size(); ++i) EXPECT_EQ(ours[i], written[i]) << "event " << i;
  EXPECT_EQ(pongs, (std::vector<std::string>{"pong:c0", "pong:c1", "pong:c2"}));
  EXPECT_EQ(log.end, websocket::error::closed);
  EXPECT_EQ(log.close_code, websocket::close_code::going_away);
}

// The client closes while much is queued and unread: Beast's read answers
// with its close frame and tears the connection down. The teardown must
// wait for the queue: the client gets every frame, then the close reply.
TEST(GatherWriteStream, TeardownAfterTheClientsCloseWritesEverythingQueuedFirst) {
  constexpr int kFrames = 40;
  Loopback net_(4096, 4096);
  ServerSocket ws(beast::tcp_stream(std::move(net_.server)));
  std::promise<void> queued;
  auto client = std::async(std::launch::async, [&, socket = std::move(net_.client)]() mutable {
    websocket::stream<tcp::socket> c(std::move(socket));
    c.handshake("127.0.0.1", "/");
    queued.get_future().wait();
    // A close frame (code 1000) written under Beast, which still thinks the
    // connection is open and reads on: masked, as a client's must be.
    net::write(c.next_layer(), net::buffer("\x88\x82\x00\x00\x00\x00\x03\xe8", 8));
    ClientLog log;
    for (;;) {
      beast::flat_buffer buffer;
      c.read(buffer, log.end);
      if (log.end) break;
      log.events.push_back(beast::buffers_to_string(buffer.data()));
    }
    log.close_code = c.reason().code;
    return log;
  });
  beast::flat_buffer read_buffer;
  beast::error_code read_end;
  net::co_spawn(
      net_.io,
      [&]() -> net::awaitable<void> {
        co_await ws.async_accept(net::use_awaitable);
        for (int i = 0; i < kFrames; ++i) {
          auto payload = Payload(30000 + i, i);
          ws.next_layer().Append(EncodeTextFrameHeader(payload->size()).view(), payload);
        }
        ws.next_layer().StartWrite();
        queued.set_value();
        auto [ec, n] = co_await ws.async_read(read_buffer, net::as_tuple(net::use_awaitable));
        read_end = ec;
      },
      net::detached);
  net_.io.run();
  ClientLog log = client.get();
  EXPECT_EQ(read_end, websocket::error::closed);
  ASSERT_EQ(log.events.size(), static_cast<size_t>(kFrames));
  for (int i = 0; i < kFrames; ++i) EXPECT_EQ(log.events[i], *Payload(30000 + i, i)) << i;
  EXPECT_EQ(log.end, websocket::error::closed);
  EXPECT_EQ(log.close_code, websocket::close_code::normal);
}

// --- the layer alone, over raw TCP ------------------------------------------------

// Records of the form "<8-digit length>" + body, as the reader parses them.
std::string Head(size_t body_size) {
  char h[9];
  std::snprintf(h, sizeof h, "%08zu", body_size);
  return h;
}

std::string ReadAll(tcp::socket& s) {
  std::string out;
  beast::error_code ec;
  char buf[65536];
  for (;;) {
    size_t n = s.read_some(net::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

// Discarding drops the records no write has begun to take, never part of
// one, and never Beast's bytes.
TEST(GatherWriteStream, DiscardKeepsWholeRecordsInFlightAndBeastsBytes) {
  constexpr int kRecords = 400;
  Loopback net_(4096, 4096);
  GatherWriteStream out{beast::tcp_stream(std::move(net_.server))};
  for (int i = 0; i < kRecords; ++i) {
    out.Append(Head(1000 + i), Payload(1000 + i, i));  // shared bodies
    out.Append(Head(10), Payload(10, i));              // copied ones
    if (i == 0) out.StartWrite();
  }
  out.StartWrite();
  net_.io.poll();  // the first write completes (partly); the next is in flight
  size_t before = out.queued_bytes();
  out.DiscardAppended();
  EXPECT_LT(out.queued_bytes(), before);
  bool written = false;
  out.async_write_some(net::buffer(std::string_view("END")), [&](beast::error_code ec, size_t n) {
    EXPECT_FALSE(ec);
    EXPECT_EQ(n, 3u);
    written = true;
  });
  auto reader = std::async(std::launch::async, [&] { return ReadAll(net_.client); });
  out.async_flush([&](beast::error_code ec) {
    EXPECT_FALSE(ec);
    out.next_layer().socket().shutdown(tcp::socket::shutdown_send);
  });
  net_.io.run();
  EXPECT_TRUE(written);
  std::string got = reader.get();
  // Whole records 0, 0', 1, 1', ... then "END".
  size_t at = 0;
  int records = 0;
  while (at < got.size() && got.compare(at, 3, "END") != 0) {
    int i = records / 2;
    size_t size = records % 2 == 0 ? 1000 + i : 10;
    ASSERT_EQ(got.substr(at, 8), Head(size)) << "record " << records << " at " << at;
    ASSERT_EQ(got.substr(at + 8, size), *Payload(size, i)) << "record " << records;
    at += 8 + size;
    ++records;
  }
  EXPECT_EQ(got.substr(at), "END");
  EXPECT_GT(records, 0);
  EXPECT_LT(records, 2 * kRecords);
}

// The peer resets the connection: the write fails, the handler hears it
// once, and every later write fails with that error at once.
TEST(GatherWriteStream, FailedWriteIsReportedOnceAndFailsLaterWrites) {
  Loopback net_;
  GatherWriteStream out{beast::tcp_stream(std::move(net_.server))};
  int errors = 0;
  beast::error_code first;
  out.OnError([&](beast::error_code ec) {
    ++errors;
    first = ec;
  });
  net_.client.set_option(net::socket_base::linger(true, 0));  // close sends a reset
  net_.client.close();
  auto body = Payload(100000, 0);
  // Writing into a reset connection fails within a few writes.
  for (int i = 0; i < 1000 && !out.error(); ++i) {
    out.Append(Head(body->size()), body);
    out.StartWrite();
    net_.io.poll();
    net_.io.restart();
  }
  ASSERT_TRUE(out.error());
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(first, out.error());
  EXPECT_EQ(out.queued_bytes(), 0u);
  out.Append(Head(1), Payload(1, 0));  // dropped
  EXPECT_EQ(out.queued_bytes(), 0u);
  beast::error_code later;
  size_t taken = 99;
  out.async_write_some(net::buffer(std::string_view("x")), [&](beast::error_code ec, size_t n) {
    later = ec;
    taken = n;
  });
  beast::error_code flushed;
  out.async_flush([&](beast::error_code ec) { flushed = ec; });
  net_.io.run();
  EXPECT_EQ(later, first);
  EXPECT_EQ(taken, 0u);
  EXPECT_EQ(flushed, first);
  EXPECT_EQ(errors, 1);
}

// Beast's bytes that would take the queue over SetMaxQueued's limit fail the
// stream while a write is in flight: that write still completes on what it
// took (its buffers are not freed under it), then everything is dropped.
TEST(GatherWriteStream, BeastBytesOverTheLimitFailTheStreamWhileAWriteIsInFlight) {
  constexpr size_t kLimit = 64 * 1024;
  Loopback net_(4096, 4096);
  GatherWriteStream out{beast::tcp_stream(std::move(net_.server))};
  out.SetMaxQueued(kLimit);
  int errors = 0;
  out.OnError([&](beast::error_code) { ++errors; });
  for (int i = 0; i < 6; ++i) out.Append(Head(10000), Payload(10000, i));
  out.StartWrite();
  net_.io.poll();  // the first write completes (partly); the next is in flight
  net_.io.restart();
  ASSERT_GT(out.queued_bytes(), 0u);
  beast::error_code refused;
  size_t taken = 99;
  std::string pong(kLimit, 'p');  // more than the room left
  out.async_write_some(net::buffer(pong), [&](beast::error_code ec, size_t n) {
    refused = ec;
    taken = n;
  });
  EXPECT_EQ(out.error(), net::error::no_buffer_space);
  EXPECT_EQ(errors, 1);
  EXPECT_EQ(out.queued_bytes(), 0u);
  auto reader = std::async(std::launch::async, [&] { return ReadAll(net_.client); });
  net_.io.run_for(std::chrono::seconds(1));  // the write in flight completes
  EXPECT_EQ(out.queued_bytes(), 0u) << "the completion counted against an emptied queue";
  EXPECT_EQ(out.error(), net::error::no_buffer_space);
  out.next_layer().socket().close();
  std::string got = reader.get();
  EXPECT_EQ(refused, net::error::no_buffer_space);
  EXPECT_EQ(taken, 0u);
  EXPECT_EQ(errors, 1);
  EXPECT_LT(got.size(), 6u * 10008) << "only what was written before the failure";
  EXPECT_EQ(got.substr(0, 8), Head(10000));
}

// Stalled: bytes are queued and the socket took none of them for the given
// time (the clock is passed in: no test waits for it).
TEST(GatherWriteStream, StalledOnlyWhileBytesWaitWithoutProgress) {
  Loopback net_(4096, 4096);
  GatherWriteStream out{beast::tcp_stream(std::move(net_.server))};
  using Clock = GatherWriteStream::Clock;
  EXPECT_FALSE(out.StalledFor(std::chrono::seconds(2), Clock::now() + std::chrono::hours(1)))
      << "nothing queued is never stalled";
  auto body = Payload(1 << 20, 0);  // more than the socket holds
  out.Append(Head(body->size()), body);
  out.StartWrite();
  net_.io.poll();
  ASSERT_GT(out.queued_bytes(), 0u);
  EXPECT_FALSE(out.StalledFor(std::chrono::seconds(2), Clock::now()));
  EXPECT_TRUE(out.StalledFor(std::chrono::seconds(2), Clock::now() + std::chrono::seconds(3)));
}

// What the HTTP parser read past the upgrade request comes first, in as
// many reads as the buffers take, each completing posted (never inside
// the call); then the socket's own bytes.
TEST(GatherWriteStream, PreloadedBytesAreReadFirstThenTheSocket) {
  Loopback net_;
  GatherWriteStream in{beast::tcp_stream(std::move(net_.server))};
  in.Preload("abc");
  net::write(net_.client, net::buffer(std::string("def")));
  std::string got;
  std::vector<size_t> reads;
  char buf[2];
  std::function<void(beast::error_code, size_t)> on_read = [&](beast::error_code ec, size_t n) {
    ASSERT_FALSE(ec) << ec.message();
    got.append(buf, n);
    reads.push_back(n);
    if (got.size() < 6) in.async_read_some(net::buffer(buf), on_read);
  };
  in.async_read_some(net::buffer(buf), on_read);
  EXPECT_TRUE(reads.empty()) << "completed inside the call";
  while (got.size() < 6 && net_.io.run_one() > 0) {
  }
  EXPECT_EQ(got, "abcdef");
  ASSERT_GE(reads.size(), 3u);
  EXPECT_EQ(reads[0], 2u);
  EXPECT_EQ(reads[1], 1u) << "a read does not run past the preloaded bytes";
}

}  // namespace
}  // namespace etherply::server
