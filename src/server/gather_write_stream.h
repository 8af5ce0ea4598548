// GatherWriteStream: the layer between a session's WebSocket stream and its
// TCP stream, so that everything queued for a connection leaves in one
// gather write (writev) instead of one socket write per message.
//
// What. It wraps the connection's beast::tcp_stream and is the next layer of
// the session's websocket::stream. Reads go straight through to the TCP
// stream. Writes never wait for the socket:
//   - async_write_some (Beast's writes: the handshake response, pings, pongs,
//     close frames) copies the whole buffer sequence into the queue and
//     completes, posted, with its full size;
//   - Append (the session's own frames: a header, copied, and a broadcast's
//     payload, shared by every session without a copy; a payload shorter
//     than kCopyBelow is copied beside its header instead) only queues;
//     StartWrite then sends.
// The layer keeps at most one write in flight to the socket. Each takes what
// is queued, up to kMaxBuffers buffers, as one writev; when it completes,
// the next takes what came meanwhile. A partial write continues where it
// stopped. It writes to the socket itself: the tcp_stream's timeouts are
// not used (a session sets expires_never; the WebSocket's own take over).
//
// Why. Beast writes one WebSocket message per async_write and completion:
// one syscall (and, on loopback, the receiver's TCP work) per delivery. A
// burst to 100 readers was bound by that (doc/design.md, "Writes: one
// gather write per connection").
//
// Order. Bytes leave in the order they were given, Beast's and Append's
// alike. Every write is taken whole at once, so a frame of Beast's and one
// of the session's never interleave mid-frame, and Beast's replies during
// reads (pongs, the close reply) stay valid frames between the session's.
// A session must not Append once the WebSocket is no longer open (Beast
// marks it closing before it queues its close frame): nothing may follow
// the close frame.
//
// Closing. async_teardown (below; Beast finds it by argument-dependent
// lookup after a close frame) waits until everything queued is written,
// then tears the TCP connection down as Beast does for a tcp_stream
// (shutdown of the sending side, reading until the peer closes).
//
// Errors. The first failed socket write is kept: the queue is dropped,
// later Appends are dropped, Beast's later writes and a waiting teardown
// complete with that error, and the OnError handler runs once.
//
// Thread-safety: none of its own. Everything, the completions included, runs
// on the TCP stream's executor, which must be the connection's strand; call
// every method there.
#pragma once

#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/role.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace etherply::server {

class GatherWriteStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;
  using next_layer_type = boost::beast::tcp_stream;
  using Clock = std::chrono::steady_clock;

  // Buffers per writev: Asio passes at most 64 to one call.
  static constexpr size_t kMaxBuffers = 64;
  // Payloads shorter than this are copied beside their header into one
  // buffer (a memcpy is cheaper than a buffer of their own in the writev:
  // 25% less server CPU for 100-byte broadcasts, doc/design.md); longer
  // ones are written from the shared string.
  static constexpr size_t kCopyBelow = 512;

  explicit GatherWriteStream(boost::beast::tcp_stream stream);
  // Queued bytes that are not yet written are dropped; a write in flight
  // completes (aborted: the socket closes) without touching this object.
  ~GatherWriteStream();
  GatherWriteStream(const GatherWriteStream&) = delete;
  GatherWriteStream& operator=(const GatherWriteStream&) = delete;

  executor_type get_executor() noexcept { return stream_.get_executor(); }
  next_layer_type& next_layer() noexcept { return stream_; }
  const next_layer_type& next_layer() const noexcept { return stream_; }

  // Reads what Preload gave first (completing, posted), then from the TCP
  // stream.
  template <class MutableBufferSequence, class ReadHandler>
  auto async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
    return boost::asio::async_initiate<ReadHandler, void(boost::beast::error_code, size_t)>(
        [this](auto handler, const MutableBufferSequence& buffers) {
          if (preloaded_.empty()) return stream_.async_read_some(buffers, std::move(handler));
          size_t n = boost::asio::buffer_copy(buffers, boost::asio::buffer(preloaded_));
          preloaded_.erase(0, n);
          boost::asio::post(get_executor(), boost::beast::bind_front_handler(
                                                std::move(handler), boost::beast::error_code{}, n));
        },
        handler, buffers);
  }
  // Bytes read from the socket before this stream took it (what the HTTP
  // parser read past an upgrade request: frames a client sent with it),
  // for the first reads to return.
  void Preload(std::string bytes) { preloaded_ = std::move(bytes); }

  // Takes the whole of `buffers` (copied) into the queue, starts a write,
  // and completes, posted, with buffer_size(buffers); after a write error,
  // takes nothing and completes with that error. Bytes that would take the
  // queue over SetMaxQueued's limit are a write error of their own
  // (no_buffer_space): Beast answers a ping whether or not the peer reads,
  // so only this bounds what a peer that pings and never reads costs.
  template <class ConstBufferSequence, class WriteHandler>
  auto async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
    return boost::asio::async_initiate<WriteHandler, void(boost::beast::error_code, size_t)>(
        [this](auto handler, const ConstBufferSequence& buffers) {
          boost::beast::error_code ec = error();
          size_t n = 0;
          if (!ec) ec = Admit(boost::asio::buffer_size(buffers));
          if (!ec) {
            std::string bytes;
            bytes.reserve(boost::asio::buffer_size(buffers));
            for (auto b : boost::beast::buffers_range_ref(buffers))
              bytes.append(static_cast<const char*>(b.data()), b.size());
            n = bytes.size();
            AppendOwn(std::move(bytes));
          }
          boost::asio::post(get_executor(),
                            boost::beast::bind_front_handler(std::move(handler), ec, n));
        },
        handler, buffers);
  }

  // Queues one record: `head` (copied), then `body` (shared, not copied,
  // unless shorter than kCopyBelow). It is written after everything queued
  // before it, once StartWrite is called (or the write in flight completes).
  // Dropped after a write error.
  void Append(std::string_view head, std::shared_ptr<const std::string> body);
  // Starts a write of what is queued, unless one is in flight (its
  // completion starts the next) or nothing is queued. Append many, then
  // StartWrite once: they leave in one writev.
  void StartWrite();
  // Drops the records of Append that no write has begun to take; Beast's
  // bytes and a record already partly written stay.
  void DiscardAppended();

  // Bytes taken (Beast's and Append's) and not yet written to the socket.
  size_t queued_bytes() const;
  // Bytes the socket has taken since the stream began. Queued bytes leave
  // in order, so a byte queued when written_bytes() + queued_bytes() was N
  // is written once written_bytes() reaches N.
  uint64_t written_bytes() const;
  // The most Beast's writes may find queued (0, the default: no limit).
  // Append is not limited here: its caller bounds it (the session's send
  // queue limit).
  void SetMaxQueued(size_t bytes);
  // True when bytes are queued and the socket has taken none of them for
  // longer than `d` (the reader does not read).
  bool StalledFor(Clock::duration d, Clock::time_point now = Clock::now()) const;
  // The first write error; empty while none.
  boost::beast::error_code error() const;
  // `handler` runs once, on the strand, with the first write error.
  void OnError(std::function<void(boost::beast::error_code)> handler);

  // Completes, posted, once nothing is queued (with the write error, if one
  // happened). For async_teardown.
  template <class CompletionToken>
  auto async_flush(CompletionToken&& token) {
    return boost::asio::async_compose<CompletionToken, void(boost::beast::error_code)>(
        [this, started = false](auto& self, boost::beast::error_code = {}) mutable {
          if (!started) {
            started = true;
            if (queued_bytes() > 0 && !error()) return WaitFlushed(std::move(self));
            return boost::asio::post(get_executor(), std::move(self));  // never inline
          }
          self.complete(error());
        },
        token, stream_);
  }

 private:
  struct State;
  void AppendOwn(std::string bytes);  // Beast's: never discarded
  // Whether Beast's `n` more bytes fit under SetMaxQueued's limit; if not,
  // fails the stream (the error, also returned, ends the connection).
  boost::beast::error_code Admit(size_t n);
  // Calls `wake` (a completion of async_flush) once the queue is empty or a
  // write failed.
  template <class Wake>
  void WaitFlushed(Wake&& wake);
  void ArmFlushWait();  // makes State's timer the flush signal
  boost::asio::steady_timer& flush_timer();

  boost::beast::tcp_stream stream_;
  std::shared_ptr<State> state_;  // shared with the write in flight
  std::string preloaded_;         // Preload's bytes not yet read
};

template <class Wake>
void GatherWriteStream::WaitFlushed(Wake&& wake) {
  // The writer cancels the timer when the queue empties or a write fails:
  // the wait's operation_aborted is that signal, not an error.
  ArmFlushWait();
  flush_timer().async_wait(std::forward<Wake>(wake));
}

// Beast's teardown for a GatherWriteStream: flush, then the TCP stream's.
template <class TeardownHandler>
void async_teardown(boost::beast::role_type role, GatherWriteStream& stream,
                    TeardownHandler&& handler) {
  enum Step { kFlush, kTeardown, kDone };
  boost::asio::async_compose<TeardownHandler, void(boost::beast::error_code)>(
      [role, &stream, step = kFlush](auto& self, boost::beast::error_code ec = {}) mutable {
        switch (step) {
          case kFlush:
            step = kTeardown;
            return stream.async_flush(std::move(self));
          case kTeardown:
            if (ec) return self.complete(ec);
            step = kDone;
            using boost::beast::websocket::async_teardown;
            return async_teardown(role, stream.next_layer(), std::move(self));
          case kDone:
            return self.complete(ec);
        }
      },
      handler, stream);
}

}  // namespace etherply::server
