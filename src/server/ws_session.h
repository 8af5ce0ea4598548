// One WebSocket client of a workspace.
//
// Reads messages one at a time and hands ops to the workspace; writes the
// messages the workspace sends, one write in flight at a time, from a queue
// bounded by ServerOptions::max_send_queue_bytes: a client over it whose
// write has been stuck for 2 s, or that is 4x over, is closed with 1008. A
// broadcast is encoded once and shared by every session.
//
// Thread-safety: Send and Close may be called from any thread; everything
// else runs on the session's strand.
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "auth/jwt.h"
#include "server/context.h"

namespace etherply::server {

class WebSocketSession : public Client, public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(boost::beast::tcp_stream stream, std::shared_ptr<ServerContext> ctx,
                   std::shared_ptr<Workspace> workspace, auth::Claims claims, std::string peer);
  ~WebSocketSession() override;

  // Accepts the upgrade request, then joins the workspace.
  void Run(boost::beast::http::request<boost::beast::http::string_body> request);

  void Send(std::shared_ptr<const std::string> message) override;
  void Close(uint16_t code, std::string_view reason) override;

 private:
  void OnAccept(boost::beast::error_code ec);
  void DoRead();
  void OnRead(boost::beast::error_code ec, size_t bytes);
  void CloseNow(uint16_t code, std::string reason);
  void DoClose();
  void SchedulePing();
  void DoWrite();
  void OnWrite(boost::beast::error_code ec, size_t bytes);
  void Fail(boost::beast::error_code ec, const char* what);
  void Drain();

  // Constant after construction.
  std::shared_ptr<ServerContext> ctx_;
  std::shared_ptr<Workspace> workspace_;
  const auth::Claims claims_;
  const std::string peer_;

  // Used only on the stream's strand.
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::asio::steady_timer ping_timer_;
  boost::beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  size_t queued_bytes_ = 0;
  using Clock = std::chrono::steady_clock;
  bool writing_ = false;
  Clock::time_point write_started_;
  bool closing_ = false;
  bool joined_ = false;
  boost::beast::websocket::close_reason close_reason_;
};

}  // namespace etherply::server
