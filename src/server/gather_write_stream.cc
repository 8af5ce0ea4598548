#include "server/gather_write_stream.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <span>

namespace etherply::server {

namespace beast = boost::beast;
namespace net = boost::asio;

namespace {
// A copied segment grows up to this size; the next record starts another.
constexpr size_t kChunkBytes = 64 * 1024;
}  // namespace

// The queue, shared with the write in flight: its completion may come after
// the stream is gone (then `socket` is null and it only lets go).
struct GatherWriteStream::State : std::enable_shared_from_this<State> {
  enum class Kind : uint8_t {
    kRecord,  // copied bytes that begin a record of Append (heads, short bodies)
    kBody,    // a shared body, the rest of the record before it
    kBeast,   // bytes of async_write_some: never discarded
  };
  struct Segment {
    Kind kind;
    std::string own;                            // kRecord, kBeast
    std::shared_ptr<const std::string> shared;  // kBody
    std::string_view bytes() const { return shared ? std::string_view(*shared) : own; }
  };

  void NoteQueued(size_t n);
  // The last segment, if it is copied record bytes that may still grow by n.
  Segment* GrowableTail(size_t n);
  void Start();
  void OnWritten(beast::error_code ec, size_t n);
  void Consume(size_t n);
  void Fail(beast::error_code ec);
  void WakeFlushed();

  beast::tcp_stream::socket_type* socket = nullptr;  // null once the stream is gone
  std::deque<Segment> segments;
  size_t front_offset = 0;  // bytes of segments.front() written already
  size_t in_flight = 0;     // segments (from the front) the write in flight took
  bool writing = false;
  size_t queued = 0;
  uint64_t written = 0;        // bytes the socket took, ever
  size_t max_queued = 0;       // for Beast's writes; 0: no limit
  Clock::time_point progress;  // the socket last took bytes, or the queue last filled
  beast::error_code error;
  std::function<void(beast::error_code)> on_error;
  std::optional<net::steady_timer> flush_timer;
  bool flush_waiting = false;
  // The write in flight's buffers; allocated while the queue holds bytes
  // (idle connections do not keep it).
  std::unique_ptr<net::const_buffer[]> buffers;
};

void GatherWriteStream::State::NoteQueued(size_t n) {
  if (queued == 0) progress = Clock::now();
  queued += n;
}

GatherWriteStream::State::Segment* GatherWriteStream::State::GrowableTail(size_t n) {
  if (segments.size() <= in_flight) return nullptr;  // the write in flight holds its bytes
  if (segments.size() == 1 && front_offset > 0) return nullptr;  // partly written
  Segment& tail = segments.back();
  if (tail.kind != Kind::kRecord || tail.own.size() + n > kChunkBytes) return nullptr;
  return &tail;
}

void GatherWriteStream::State::Start() {
  if (writing || error || segments.empty() || socket == nullptr) return;
  if (!buffers) buffers = std::make_unique<net::const_buffer[]>(kMaxBuffers);
  size_t k = 0;
  for (const Segment& s : segments) {
    if (k == kMaxBuffers) break;
    std::string_view b = s.bytes();
    if (k == 0) b.remove_prefix(front_offset);
    buffers[k++] = net::const_buffer(b.data(), b.size());
  }
  in_flight = k;
  writing = true;
  socket->async_write_some(
      std::span<const net::const_buffer>(buffers.get(), k),
      [self = shared_from_this()](beast::error_code ec, size_t n) { self->OnWritten(ec, n); });
}

void GatherWriteStream::State::OnWritten(beast::error_code ec, size_t n) {
  writing = false;
  in_flight = 0;
  if (socket == nullptr) return;
  if (error) {  // failed while this write was in flight (Admit): drop what it held
    segments.clear();
    buffers.reset();
    front_offset = 0;
    return;
  }
  if (ec) return Fail(ec);
  if (n > 0) progress = Clock::now();
  Consume(n);
  if (!segments.empty()) return Start();
  buffers.reset();
  WakeFlushed();
}

void GatherWriteStream::State::Consume(size_t n) {
  queued -= n;
  written += n;
  while (n > 0) {
    size_t left = segments.front().bytes().size() - front_offset;
    if (n < left) {
      front_offset += n;
      return;
    }
    n -= left;
    segments.pop_front();
    front_offset = 0;
  }
}

void GatherWriteStream::State::Fail(beast::error_code ec) {
  error = ec;
  // A write in flight still points into its segments and buffers: they go
  // when it completes (OnWritten).
  if (writing) {
    segments.resize(in_flight);
  } else {
    segments.clear();
    buffers.reset();
    front_offset = 0;
  }
  queued = 0;
  WakeFlushed();
  if (auto handler = std::move(on_error)) {
    on_error = nullptr;
    handler(ec);
  }
}

void GatherWriteStream::State::WakeFlushed() {
  if (!flush_waiting) return;
  flush_waiting = false;
  flush_timer->cancel();
}

GatherWriteStream::GatherWriteStream(beast::tcp_stream stream)
    : stream_(std::move(stream)), state_(std::make_shared<State>()) {
  state_->socket = &stream_.socket();
}

GatherWriteStream::~GatherWriteStream() {
  state_->socket = nullptr;
  state_->on_error = nullptr;
}

void GatherWriteStream::Append(std::string_view head, std::shared_ptr<const std::string> body) {
  State& s = *state_;
  if (s.error) return;
  bool copy = body->size() < kCopyBelow;
  size_t copied = head.size() + (copy ? body->size() : 0);
  s.NoteQueued(head.size() + body->size());
  State::Segment* tail = s.GrowableTail(copied);
  if (tail == nullptr) {
    tail = &s.segments.emplace_back(State::Segment{State::Kind::kRecord, {}, nullptr});
    tail->own.reserve(std::max<size_t>(copied, 256));
  }
  tail->own.append(head);
  if (copy) {
    tail->own.append(*body);
  } else {
    s.segments.push_back(State::Segment{State::Kind::kBody, {}, std::move(body)});
  }
}

void GatherWriteStream::StartWrite() { state_->Start(); }

void GatherWriteStream::DiscardAppended() {
  State& s = *state_;
  // Kept: what the write in flight took, and a segment partly written.
  size_t first = std::max<size_t>(s.in_flight, s.front_offset > 0 ? 1 : 0);
  bool dropping = false;  // within records being dropped
  size_t out = first;
  for (size_t i = first; i < s.segments.size(); ++i) {
    State::Segment& seg = s.segments[i];
    // A record begins with copied bytes; a shared body right after the
    // kept segments is the rest of a kept record; Beast's bytes stay.
    if (seg.kind == State::Kind::kRecord) dropping = true;
    bool drop = seg.kind != State::Kind::kBeast && dropping;
    if (drop) {
      s.queued -= seg.bytes().size();
    } else {
      if (out != i) s.segments[out] = std::move(seg);
      ++out;
    }
  }
  s.segments.resize(out);
  if (s.segments.empty()) s.WakeFlushed();
}

size_t GatherWriteStream::queued_bytes() const { return state_->queued; }

uint64_t GatherWriteStream::written_bytes() const { return state_->written; }

bool GatherWriteStream::StalledFor(Clock::duration d, Clock::time_point now) const {
  return state_->queued > 0 && now - state_->progress > d;
}

beast::error_code GatherWriteStream::error() const { return state_->error; }

void GatherWriteStream::SetMaxQueued(size_t bytes) { state_->max_queued = bytes; }

beast::error_code GatherWriteStream::Admit(size_t n) {
  State& s = *state_;
  if (s.max_queued == 0 || s.queued + n <= s.max_queued) return {};
  s.Fail(net::error::no_buffer_space);
  return s.error;
}

void GatherWriteStream::OnError(std::function<void(beast::error_code)> handler) {
  state_->on_error = std::move(handler);
}

void GatherWriteStream::AppendOwn(std::string bytes) {
  State& s = *state_;
  if (bytes.empty()) return;
  s.NoteQueued(bytes.size());
  s.segments.push_back(State::Segment{State::Kind::kBeast, std::move(bytes), nullptr});
  s.Start();
}

void GatherWriteStream::ArmFlushWait() {
  State& s = *state_;
  if (!s.flush_timer) s.flush_timer.emplace(stream_.get_executor());
  s.flush_timer->expires_at(Clock::time_point::max());
  s.flush_waiting = true;
}

net::steady_timer& GatherWriteStream::flush_timer() { return *state_->flush_timer; }

}  // namespace etherply::server
