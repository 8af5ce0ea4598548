// One WebSocket client of a workspace.
//
// Reads messages one at a time (Beast: limits, control frames, UTF-8) and
// hands ops to the workspace. Writes the messages the workspace sends as
// text frames of its own into the GatherWriteStream under Beast
// (server/gather_write_stream.h): a broadcast is encoded once, shared by
// every session, and all that is queued for the connection leaves in one
// gather write. The queue is bounded by ServerOptions::max_send_queue_bytes:
// a client over it whose socket has taken nothing for 2 s, or that is 4x
// over, is closed with 1008; Beast's own frames (pongs) that would take the
// queue over 4x close the socket at once (a client that pings and never
// reads). The init, which holds the workspace's whole state, counts beside
// these bounds while part of it is unwritten, so that a workspace of any
// size can be joined. Nothing is queued before the handshake
// response (the session joins its workspace once accepted) nor after the
// close frame (nor once Beast is closing).
//
// A session ends when its token does, as the handshake would refuse it
// then (exp plus auth::kLeewaySeconds): closed with 1008 "the token
// expired". A client reconnects with a fresh token.
//
// Reads pause while the client's messages waiting for their answer (ops:
// to be durable) reach ServerOptions::max_inflight_op_bytes, and resume when
// one is answered: a client that sends faster than the disk writes is held
// back by TCP, and what the server holds for it stays bounded.
//
// Thread-safety: Send and Close may be called from any thread; everything
// else runs on the session's strand.
#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "auth/jwt.h"
#include "server/context.h"
#include "server/gather_write_stream.h"

namespace etherply::server {

class WebSocketSession : public Client, public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(boost::beast::tcp_stream stream, std::shared_ptr<ServerContext> ctx,
                   std::shared_ptr<Workspace> workspace, auth::Claims claims, std::string peer);
  ~WebSocketSession() override;

  // Accepts the upgrade request, then joins the workspace. `read_ahead`:
  // bytes read past the request (frames the client sent with it), read
  // first.
  void Run(boost::beast::http::request<boost::beast::http::string_body> request,
           std::string read_ahead = {});

  void Send(std::shared_ptr<const std::string> message) override;
  // One post for the batch, one write started after all of it is queued.
  void SendBatch(Batch messages) override;
  void Close(uint16_t code, std::string_view reason) override;

 private:
  void OnAccept(boost::beast::error_code ec);
  void DoRead();
  void OnRead(boost::beast::error_code ec, size_t bytes);
  // An error answering what the client sent (Workspace::Reply).
  void ReplyError(int code, std::string_view message, std::function<void()> settled);
  // An op of `cost` bytes settled (any thread): resumes reading if it was
  // the one that takes the connection back under the limit.
  void OnOpSettled(size_t cost);
  void CloseNow(uint16_t code, std::string reason);
  void DoClose();
  void SchedulePing();
  // Arms expiry_timer_ for the end of the token's validity.
  void ScheduleExpiry();
  // Both timers: once the session closes, nothing of it waits.
  void CancelTimers();
  // Queues `message` as a text frame; false if the session closed (now,
  // because its queue is over the limit, or before).
  bool QueueFrame(const std::shared_ptr<const std::string>& message);
  void OnWriteError(boost::beast::error_code ec);
  void Fail(boost::beast::error_code ec, const char* what);

  // Constant after construction.
  std::shared_ptr<ServerContext> ctx_;
  std::shared_ptr<Workspace> workspace_;
  const auth::Claims claims_;
  const std::string peer_;

  // Used only on the stream's strand.
  // Without permessage-deflate support (`false`): the frames the session
  // writes itself are never compressed, so none may be negotiated.
  boost::beast::websocket::stream<GatherWriteStream, false> ws_;
  boost::asio::steady_timer ping_timer_;
  boost::asio::steady_timer expiry_timer_;
  boost::beast::flat_buffer buffer_;
  bool closing_ = false;
  bool joined_ = false;
  bool first_queued_ = false;  // the init (or the error that replaces it)
  // Where the init ends in the stream (GatherWriteStream::written_bytes);
  // 0 once it is written. What is left of it counts beside the limits.
  uint64_t init_end_ = 0;
  bool reads_paused_ = false;
  boost::beast::websocket::close_reason close_reason_;
  boost::beast::websocket::stream_base::timeout timeouts_{};

  // Bytes of this client's ops submitted and not yet settled: added on the
  // strand as an op is read, taken back on the workspace's strand as it
  // settles. Reads pause at the add that reaches the limit; exactly one
  // settle then takes it back under, and that one resumes them.
  std::atomic<size_t> inflight_op_bytes_{0};
};

}  // namespace etherply::server
