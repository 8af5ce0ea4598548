#include "replication/outbox.h"

#include <algorithm>
#include <optional>

#include "base/coding.h"

namespace etherply::replication {

namespace {

constexpr std::string_view kPrefix = "r/o/";

std::string Key(uint64_t seq) {
  std::string k(kPrefix);
  for (int shift = 56; shift >= 0; shift -= 8) k.push_back(static_cast<char>(seq >> shift));
  return k;
}

Result<uint64_t> Seq(std::string_view key) {
  if (key.size() != kPrefix.size() + 8) return Status::Corruption("replication outbox: bad key");
  uint64_t seq = 0;
  for (size_t i = kPrefix.size(); i < key.size(); ++i)
    seq = (seq << 8) | static_cast<uint8_t>(key[i]);
  return seq;
}

Result<Outbox::Item> Parse(std::string_view key, std::string_view value) {
  auto seq = Seq(key);
  if (!seq.ok()) return seq.status();
  Outbox::Item item;
  item.seq = *seq;
  Reader r(AsBytes(value));
  auto ws = r.LengthPrefixed();
  if (!ws.ok() || ws->empty()) return Status::Corruption("replication outbox: bad workspace");
  auto ts = r.Sleb();
  if (!ts.ok()) return Status::Corruption("replication outbox: bad timestamp");
  auto hash = r.Take(32);
  if (!hash.ok()) return Status::Corruption("replication outbox: bad hash");
  if (r.empty()) return Status::Corruption("replication outbox: no change");
  item.workspace = std::string(AsChars(*ws));
  item.timestamp = *ts;
  std::copy(hash->begin(), hash->end(), item.hash.begin());
  item.chunk = std::string(AsChars(r.rest()));
  return item;
}

}  // namespace

Result<std::unique_ptr<Outbox>> Outbox::Open(storage::Store& store, size_t max_in_memory) {
  std::unique_ptr<Outbox> o(new Outbox(store, std::max<size_t>(max_in_memory, 1)));
  if (Status s = o->Load(); !s.ok()) return s;
  std::lock_guard lock(o->mu_);
  o->backlog_ = o->ready_.size();
  if (o->reload_) {
    // Count what waits on disk too, find where the sequence numbers go on,
    // and check every record now: a malformed one fails Open, not a later
    // Load in the middle of publishing.
    Status bad = Status::Ok();
    Status s =
        store.ScanFrom(kPrefix, Key(o->scan_from_), [&](std::string_view k, std::string_view v) {
          auto item = Parse(k, v);
          if (!item.ok()) {
            bad = item.status();
            return false;
          }
          ++o->backlog_;
          o->next_seq_ = std::max(o->next_seq_, item->seq + 1);
          return true;
        });
    if (!s.ok()) return s;
    if (!bad.ok()) return bad;
  }
  return o;
}

Status Outbox::Load() {
  uint64_t from;
  {
    std::lock_guard lock(mu_);
    from = scan_from_;
  }
  std::deque<Item> loaded;
  // Where the records left on disk begin, if some are.
  std::optional<uint64_t> rest;
  Status bad = Status::Ok();
  // From the prefix itself at first, so that a malformed key below Key(0)
  // fails Open too.
  const std::string start = from == 0 ? std::string(kPrefix) : Key(from);
  Status s = store_.ScanFrom(kPrefix, start, [&](std::string_view key, std::string_view value) {
    if (loaded.size() == max_) {
      auto seq = Seq(key);
      if (seq.ok())
        rest = *seq;
      else
        bad = seq.status();
      return false;
    }
    auto item = Parse(key, value);
    if (!item.ok()) {
      bad = item.status();
      return false;
    }
    loaded.push_back(std::move(*item));
    return true;
  });
  if (!s.ok()) return s;
  if (!bad.ok()) return bad;
  std::lock_guard lock(mu_);
  if (!loaded.empty()) next_seq_ = std::max(next_seq_, loaded.back().seq + 1);
  // A record of a group written but not yet reported is in the store before
  // its Committed call, which places it: not taken twice.
  std::erase_if(loaded, [&](const Item& item) { return staged_.count(item.seq) > 0; });
  // A record committed during the scan may not be in it: read again later.
  reload_ = rest.has_value() || missed_from_ != UINT64_MAX;
  scan_from_ = std::min(rest.value_or(UINT64_MAX), missed_from_);
  missed_from_ = UINT64_MAX;
  loading_ = false;
  ready_ = std::move(loaded);
  return Status::Ok();
}

uint64_t Outbox::Stage(std::string_view workspace, const automerge::StoredChange& change,
                       int64_t timestamp, storage::WriteBatch& batch) {
  Item item{0, std::string(workspace), timestamp, change.hash, std::string(AsChars(change.bytes))};
  Bytes record;
  AppendUleb(record, item.workspace.size());
  Append(record, AsBytes(item.workspace));
  AppendSleb(record, timestamp);
  Append(record, change.hash);
  Append(record, change.bytes);
  std::lock_guard lock(mu_);
  item.seq = next_seq_++;
  batch.Put(Key(item.seq), std::string(AsChars(record)));
  uint64_t ticket = item.seq;
  staged_.emplace(ticket, std::move(item));
  return ticket;
}

void Outbox::Committed(uint64_t ticket, const Status& status) {
  std::lock_guard lock(mu_);
  auto it = staged_.find(ticket);
  if (it == staged_.end()) return;
  if (status.ok()) {
    ++backlog_;
    // Once some records wait on disk only, later ones do too, so that the
    // oldest go first.
    if (!reload_ && ready_.size() < max_) {
      ready_.push_back(std::move(it->second));
    } else {
      reload_ = true;
      scan_from_ = std::min(scan_from_, it->first);
      if (loading_) missed_from_ = std::min(missed_from_, it->first);
    }
    cv_.notify_all();
  }
  staged_.erase(it);
}

std::vector<Outbox::Item> Outbox::Next(size_t n, std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, wait, [this] {
    return closed_ || ready_.size() > handed_ || (ready_.empty() && reload_);
  });
  if (closed_) return {};
  if (ready_.empty() && reload_) {
    // Every record in memory was removed (so none is handed out): the store
    // holds exactly the rest.
    loading_ = true;
    lock.unlock();
    Status s = Load();
    lock.lock();
    if (!s.ok()) {
      loading_ = false;
      return {};  // tried again on the next call
    }
  }
  std::vector<Item> out;
  for (; handed_ < ready_.size() && out.size() < n; ++handed_) out.push_back(ready_[handed_]);
  return out;
}

Status Outbox::Remove(const std::vector<Item>& items) {
  storage::WriteBatch batch;
  for (const Item& item : items) batch.Delete(Key(item.seq));
  // Unsynced: a removal lost in a crash only publishes its records again
  // (JetStream drops the duplicates by message ID, and peers ignore changes
  // they have).
  if (Status s = store_.WriteUnsynced(batch); !s.ok()) return s;
  std::lock_guard lock(mu_);
  for (const Item& item : items) {
    if (ready_.empty() || ready_.front().seq != item.seq) break;
    ready_.pop_front();
    if (handed_ > 0) --handed_;
    --backlog_;
  }
  return Status::Ok();
}

void Outbox::Rewind() {
  std::lock_guard lock(mu_);
  handed_ = 0;
}

void Outbox::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

size_t Outbox::backlog() const {
  std::lock_guard lock(mu_);
  return backlog_;
}

}  // namespace etherply::replication
