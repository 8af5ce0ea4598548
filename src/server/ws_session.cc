#include "server/ws_session.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdint>

#include "base/log.h"
#include "server/ws_frame.h"

namespace etherply::server {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;

namespace {
constexpr auto kStallTime = std::chrono::seconds(2);
// Over this many times max_send_queue_bytes a client is closed at once.
constexpr size_t kFarOver = 4;
// What a message in flight costs beside its text: the parsed op, its pending
// entry, the callbacks (ServerOptions::max_inflight_op_bytes).
constexpr size_t kOpOverhead = 256;
}  // namespace

WebSocketSession::WebSocketSession(beast::tcp_stream stream, std::shared_ptr<ServerContext> ctx,
                                   std::shared_ptr<Workspace> workspace, auth::Claims claims,
                                   std::string peer)
    : ctx_(std::move(ctx)),
      workspace_(std::move(workspace)),
      claims_(std::move(claims)),
      peer_(std::move(peer)),
      ws_(std::move(stream)),
      ping_timer_(ws_.get_executor()),
      expiry_timer_(ws_.get_executor()) {
  ++ctx_->connections;
}

WebSocketSession::~WebSocketSession() {
  --ctx_->connections;
  if (reads_paused_) --ctx_->reads_paused;
  if (joined_) workspace_->Leave(this);
  LogInfo("disconnected " + peer_ + " workspace=" + workspace_->id() +
          " sub=" + Quoted(claims_.sub));
}

void WebSocketSession::Run(beast::http::request<beast::http::string_body> request,
                           std::string read_ahead) {
  beast::get_lowest_layer(ws_).expires_never();  // the websocket timeouts take over
  ws_.next_layer().Preload(std::move(read_ahead));
  ws_.next_layer().OnError([weak = weak_from_this()](beast::error_code ec) {
    if (auto self = weak.lock()) self->OnWriteError(ec);
  });
  // Beast's own frames (pongs, the close reply) count against the far limit
  // too, so a client that pings and never reads is closed like one that
  // only does not read.
  ws_.next_layer().SetMaxQueued(kFarOver * ctx_->options.max_send_queue_bytes);
  timeouts_.handshake_timeout = ctx_->options.handshake_timeout;
  timeouts_.idle_timeout = ctx_->options.idle_timeout;
  timeouts_.keep_alive_pings = true;
  ws_.set_option(timeouts_);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(beast::http::field::server, "etherply"); }));
  ws_.read_message_max(ctx_->options.max_message_bytes);
  ws_.async_accept(request,
                   beast::bind_front_handler(&WebSocketSession::OnAccept, shared_from_this()));
}

void WebSocketSession::OnAccept(beast::error_code ec) {
  if (ec) return Fail(ec, "accept");
  LogInfo("connected " + peer_ + " workspace=" + workspace_->id() + " sub=" + Quoted(claims_.sub) +
          " scope=\"" + claims_.scopes.ToString() + "\"");
  if (ctx_->stopping.load())  // upgraded after Server::Stop told the others
    return CloseNow(1001, "the server is shutting down");
  joined_ = true;
  workspace_->Join(shared_from_this());
  SchedulePing();
  ScheduleExpiry();
  DoRead();
}

void WebSocketSession::DoRead() {
  ws_.async_read(buffer_, beast::bind_front_handler(&WebSocketSession::OnRead, shared_from_this()));
}

void WebSocketSession::OnRead(beast::error_code ec, size_t) {
  if (ec) return Fail(ec, "read");
  std::string text(static_cast<const char*>(buffer_.data().data()), buffer_.size());
  buffer_.consume(buffer_.size());
  // Every message is in flight until answered (an op: once durable and
  // broadcast; a bad one: once its error is handed over, after the answers
  // ahead of it). Counted before it is handed on: its settle may come first
  // otherwise.
  size_t cost = text.size() + kOpOverhead;
  size_t inflight = inflight_op_bytes_.fetch_add(cost) + cost;
  auto settled = [weak = weak_from_this(), cost] {
    if (auto self = weak.lock()) self->OnOpSettled(cost);
  };
  if (!ws_.got_text()) {
    ReplyError(400, "binary messages are not supported", std::move(settled));
  } else if (auto op = ParseClientMessage(text); !op.ok()) {
    ReplyError(400, op.status().message(), std::move(settled));
  } else {
    workspace_->SubmitOp(shared_from_this(), claims_, std::move(*op), std::move(settled));
  }
  if (inflight < ctx_->options.max_inflight_op_bytes) return DoRead();
  reads_paused_ = true;
  ++ctx_->reads_paused;
  // Beast's idle timer counts only what is read: a client the server does
  // not read is not idle. Back on when reading resumes (a read re-arms it).
  auto paused = timeouts_;
  paused.idle_timeout = websocket::stream_base::none();
  ws_.set_option(paused);
}

void WebSocketSession::ReplyError(int code, std::string_view message,
                                  std::function<void()> settled) {
  workspace_->Reply(shared_from_this(), ErrorMessage(code, message), std::move(settled));
}

void WebSocketSession::OnOpSettled(size_t cost) {
  size_t before = inflight_op_bytes_.fetch_sub(cost);
  size_t limit = ctx_->options.max_inflight_op_bytes;
  if (before < limit || before - cost >= limit) return;
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    self->reads_paused_ = false;
    --self->ctx_->reads_paused;
    self->ws_.set_option(self->timeouts_);
    if (!self->closing_) self->DoRead();
  });
}

void WebSocketSession::Send(std::shared_ptr<const std::string> message) {
  net::post(ws_.get_executor(), [self = shared_from_this(), message = std::move(message)] {
    if (self->QueueFrame(message)) self->ws_.next_layer().StartWrite();
  });
}

void WebSocketSession::SendBatch(Batch messages) {
  net::post(ws_.get_executor(), [self = shared_from_this(), messages = std::move(messages)] {
    for (const auto& m : *messages)
      if (!self->QueueFrame(m)) return;
    self->ws_.next_layer().StartWrite();
  });
}

bool WebSocketSession::QueueFrame(const std::shared_ptr<const std::string>& message) {
  // A session whose join reached its workspace after Server::Stop's
  // Hub::CloseClients did was not told then: it is at its first message, its
  // init (as is any session a message reaches once the server is stopping).
  if (ctx_->stopping.load()) CloseNow(1001, "the server is shutting down");
  // Beast is no longer open once it queued a close frame (its reply to the
  // client's, or its own on a protocol error): nothing may follow that.
  if (closing_ || !ws_.is_open()) return false;
  GatherWriteStream& out = ws_.next_layer();
  out.Append(EncodeTextFrameHeader(message->size()).view(), message);
  // The first message, the init, holds the workspace's state, whatever its
  // size: while it is queued, what is left of it counts beside the limits,
  // so that any workspace can be joined.
  size_t limit = ctx_->options.max_send_queue_bytes;
  if (!first_queued_) {
    first_queued_ = true;
    init_end_ = out.written_bytes() + out.queued_bytes();
    out.SetMaxQueued(kFarOver * limit + message->size());
  }
  size_t init_left =
      init_end_ > out.written_bytes() ? static_cast<size_t>(init_end_ - out.written_bytes()) : 0;
  if (init_left == 0 && init_end_ != 0) {  // written: the bounds as for any client
    init_end_ = 0;
    out.SetMaxQueued(kFarOver * limit);
  }
  // Over the limit, a client is closed if it is stalled (its socket has
  // taken nothing for kStallTime) or far over (kFarOver): a client that reads is
  // not punished for a burst, one that does not read cannot grow the queue
  // without bound.
  size_t queued = out.queued_bytes() - std::min(out.queued_bytes(), init_left);
  if (queued > limit && (queued > kFarOver * limit || out.StalledFor(kStallTime))) {
    LogWarn("closing " + peer_ + ": send queue over " + std::to_string(limit) +
            " bytes (client not reading)");
    CloseNow(1008, "send queue full: the client is not reading");
    return false;
  }
  return true;
}

void WebSocketSession::Close(uint16_t code, std::string_view reason) {
  net::post(ws_.get_executor(), [self = shared_from_this(), code, reason = std::string(reason)] {
    self->CloseNow(code, reason);
  });
}

void WebSocketSession::CloseNow(uint16_t code, std::string reason) {
  if (closing_) return;
  closing_ = true;
  CancelTimers();
  // What is queued and not yet begun will not be sent: the close frame
  // follows the frame being written.
  ws_.next_layer().DiscardAppended();
  close_reason_ = websocket::close_reason(static_cast<websocket::close_code>(code), reason);
  DoClose();
}

void WebSocketSession::DoClose() {
  ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code) {});
}

// Pings every ping_interval, on top of Beast's keep-alive ping at half the
// idle timeout, when nothing is waiting to be written: when messages are
// flowing the connection is not quiet and the ping is skipped.
void WebSocketSession::SchedulePing() {
  ping_timer_.expires_after(ctx_->options.ping_interval);
  ping_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->closing_) return;
    if (self->ws_.next_layer().queued_bytes() == 0)
      self->ws_.async_ping({}, [self](beast::error_code) {});
    self->SchedulePing();
  });
}

void WebSocketSession::CancelTimers() {
  ping_timer_.cancel();
  expiry_timer_.cancel();
}

void WebSocketSession::ScheduleExpiry() {
  // The handshake accepted the token until now > exp + leeway (in whole
  // seconds): the session ends at the next second, when that holds. A far
  // exp waits at most about 68 years, within what the timer can count.
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  int64_t end = claims_.exp > INT64_MAX - auth::kLeewaySeconds - 1
                    ? INT64_MAX
                    : claims_.exp + auth::kLeewaySeconds + 1;
  int64_t left = end - now;
  expiry_timer_.expires_after(std::chrono::seconds(std::clamp<int64_t>(left, 0, INT32_MAX)));
  expiry_timer_.async_wait([self = shared_from_this(), end](beast::error_code ec) {
    if (ec || self->closing_) return;
    // The wait is on the steady clock, the token's time on the wall clock:
    // if that was set back meanwhile, wait again.
    if (std::chrono::duration_cast<std::chrono::seconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count() < end)
      return self->ScheduleExpiry();
    LogInfo("closing " + self->peer_ + " workspace=" + self->workspace_->id() +
            " sub=" + Quoted(self->claims_.sub) + ": the token expired");
    self->CloseNow(1008, "the token expired");
  });
}

// A failed socket write: the connection cannot be served; closing the socket
// ends the read, and with it the session.
void WebSocketSession::OnWriteError(beast::error_code ec) {
  closing_ = true;
  CancelTimers();
  if (ec == net::error::no_buffer_space)
    LogWarn("closing " + peer_ + ": send queue over " +
            std::to_string(kFarOver * ctx_->options.max_send_queue_bytes) +
            " bytes (client not reading)");
  else
    Fail(ec, "write");
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
}

void WebSocketSession::Fail(beast::error_code ec, const char* what) {
  CancelTimers();
  if (ec == websocket::error::closed || ec == net::error::operation_aborted ||
      ec == beast::error::timeout || ec == net::error::eof ||
      ec == net::error::no_buffer_space)  // OnWriteError said why
    return;
  // Beast has sent the close frame (1009) and torn the connection down
  // (async_teardown: it read on until the client closed) before this.
  if (ec == websocket::error::message_too_big)
    return LogWarn("closed " + peer_ + ": message over " +
                   std::to_string(ctx_->options.max_message_bytes) + " bytes (1009)");
  LogWarn(std::string("connection ") + peer_ + ": " + what + ": " + ec.message());
}

}  // namespace etherply::server
