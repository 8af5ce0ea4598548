// The sync protocol: messages, bloom filters, state, and the algorithm.
//
// Grammar of a sync message (FORMAT.md §8.1-§8.3):
//   message := type heads need haves changes flags?
//   type    := 42 (v1) | 43 (v2)
//   heads   := hashes                      the sender's heads
//   need    := hashes                      changes the sender asks for
//   hashes  := uleb(n) hash{n}             32 bytes each, written sorted
//   haves   := uleb(n) (last_sync uleb(len) bloom{len}){n}
//   last_sync := hashes
//   bloom   := ε                            no entries
//            | uleb(entries) uleb(bits_per_entry) uleb(probes)
//              bits{ceil(entries * bits_per_entry / 8)}   (then ignored bytes)
//   changes := uleb(n) (uleb(len) byte{len}){n}
//              v1: one change chunk an entry; v2: one entry holding a
//              document chunk or change chunks back to back
//   flags   := uleb(len) byte{len}         present iff input remains; we write
//              02 02 (80 | bits): the legacy "supports v2" byte, then a
//              bitfield; a reader ORs the low 7 bits of every byte with 80
//              set. Bytes after the flags are ignored, as the reference does.
// Bloom probes of a hash h, with m = 8 * len(bits):
//   x = LE32(h[0..4]) % m, y = LE32(h[4..8]) % m, z = LE32(h[8..12]) % m;
//   probe x, then (probes - 1) times: x = (x + y) % m; y = (y + z) % m; probe x.
//   Bit p is bits[p >> 3] & (1 << (p & 7)).
// Grammar of a persisted sync state (A.encodeSyncState):
//   state   := 43 hashes                   the shared heads; later bytes ignored
#include "automerge/sync.h"

#include <algorithm>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "base/coding.h"

namespace etherply::automerge {

namespace {

constexpr uint8_t kStateType = 0x43;
constexpr uint8_t kBitfieldMarker = 0x80;
constexpr uint8_t kLegacyV2Byte = 0x02;
// More probes than this are refused: each costs a step per hash looked up,
// and a peer could otherwise make every lookup take billions of steps.
constexpr uint32_t kMaxProbes = 64;

uint64_t BitsBytes(uint32_t entries, uint32_t bits_per_entry) {
  return (uint64_t{entries} * bits_per_entry + 7) / 8;
}

uint32_t Le32(const ChangeHash& h, size_t at) {
  return uint32_t{h[at]} | uint32_t{h[at + 1]} << 8 | uint32_t{h[at + 2]} << 16 |
         uint32_t{h[at + 3]} << 24;
}

void AppendHashes(Bytes& out, const std::vector<ChangeHash>& hashes) {
  AppendUleb(out, hashes.size());
  for (const ChangeHash& h : hashes) out.insert(out.end(), h.begin(), h.end());
}

Result<std::vector<ChangeHash>> ReadHashes(Reader& r, std::string_view what) {
  auto n = r.Uleb();
  if (!n.ok()) return n.status().WithContext(what);
  if (*n > r.remaining() / 32)
    return Status::Incomplete(std::string(what) + ": " + std::to_string(*n) +
                              " hashes run past the end");
  std::vector<ChangeHash> out(*n);
  for (ChangeHash& h : out) {
    ByteView b = *r.Take(32);
    std::copy(b.begin(), b.end(), h.begin());
  }
  return out;
}

Result<Have> ReadHave(Reader& r) {
  auto last_sync = ReadHashes(r, "have last_sync");
  if (!last_sync.ok()) return last_sync.status();
  auto bloom_bytes = r.LengthPrefixed();
  if (!bloom_bytes.ok()) return bloom_bytes.status().WithContext("have bloom");
  auto bloom = BloomFilter::Decode(*bloom_bytes);
  if (!bloom.ok()) return bloom.status().WithContext("have bloom");
  return Have{std::move(*last_sync), std::move(*bloom)};
}

bool Has(const Document& doc, const ChangeHash& h) { return doc.HasChange(h); }

std::vector<ChangeHash> HashesSince(const Document& doc, const std::vector<ChangeHash>& heads) {
  std::vector<ChangeHash> out;
  for (uint32_t i : doc.ChangesSince(heads)) out.push_back(doc.changes().hash(i));
  return out;
}

// The changes a peer that sent `have` and `need` lacks (Rust
// get_hashes_to_send): the changes it asked for that we have, then, in the
// document's order, every change since its last_sync that no bloom holds,
// with everything that depends on one of those.
std::vector<ChangeHash> HashesToSend(const Document& doc, const std::vector<Have>& have,
                                     const std::vector<ChangeHash>& need) {
  std::vector<ChangeHash> asked;
  for (const ChangeHash& h : need)
    if (Has(doc, h)) asked.push_back(h);
  if (have.empty()) return asked;

  std::vector<ChangeHash> last_sync;
  for (const Have& h : have)
    last_sync.insert(last_sync.end(), h.last_sync.begin(), h.last_sync.end());
  const ChangeLog& log = doc.changes();
  std::vector<uint32_t> since = doc.ChangesSince(last_sync);

  std::unordered_map<ChangeHash, std::vector<ChangeHash>, ChangeHashHash> dependents;
  std::unordered_set<ChangeHash, ChangeHashHash> to_send;
  for (uint32_t c : since) {
    const ChangeHash& hash = log.hash(c);
    for (uint32_t d : log.deps(c)) dependents[log.hash(d)].push_back(hash);
    bool in_a_bloom = std::any_of(have.begin(), have.end(),
                                  [&](const Have& h) { return h.bloom.Contains(hash); });
    if (!in_a_bloom) to_send.insert(hash);
  }
  std::vector<ChangeHash> stack(to_send.begin(), to_send.end());
  while (!stack.empty()) {
    ChangeHash h = stack.back();
    stack.pop_back();
    if (auto it = dependents.find(h); it != dependents.end())
      for (const ChangeHash& d : it->second)
        if (to_send.insert(d).second) stack.push_back(d);
  }

  std::vector<ChangeHash> out;
  for (const ChangeHash& h : asked)
    if (!to_send.count(h)) out.push_back(h);
  for (uint32_t c : since)
    if (to_send.count(log.hash(c))) out.push_back(log.hash(c));
  return out;
}

// The changes part of an outgoing message, and the hashes it carries.
struct Payload {
  SyncMessage::Version version;
  std::vector<Bytes> entries;
  std::vector<ChangeHash> hashes;
};

// v1: one entry a change. v2: one entry with the chunks back to back, or no
// entry when there is nothing to send.
Payload Pack(const Document& doc, std::vector<ChangeHash> hashes, bool v2) {
  Payload p{v2 ? SyncMessage::Version::kV2 : SyncMessage::Version::kV1, {}, std::move(hashes)};
  if (v2) {
    Bytes all;
    for (const ChangeHash& h : p.hashes) Append(all, doc.changes().bytes(*doc.IndexOf(h)));
    if (!all.empty()) p.entries.push_back(std::move(all));
  } else {
    for (const ChangeHash& h : p.hashes) p.entries.push_back(doc.changes().bytes(*doc.IndexOf(h)));
  }
  return p;
}

// v2, every change: the whole document as one document chunk, as the
// reference sends it.
Payload PackDocument(const Document& doc) {
  Payload p{SyncMessage::Version::kV2, {}, {}};
  p.hashes.reserve(doc.changes().size());
  for (size_t i = 0; i < doc.changes().size(); ++i) p.hashes.push_back(doc.changes().hash(i));
  if (!p.hashes.empty()) p.entries.push_back(doc.Save());
  return p;
}

// At most the bytes a change entry adds to a message beyond its chunk: a
// LEB128 length (and, once per message, the LEB128 count of entries).
constexpr size_t kEntryOverhead = 10;

// What the changes part of a message takes, at most.
size_t PayloadBytes(const Payload& p) {
  size_t n = kEntryOverhead;
  for (const Bytes& entry : p.entries) n += entry.size() + kEntryOverhead;
  return n;
}

// The longest start of `hashes` whose changes take at most `budget` bytes
// in a message, but at least the first: a change larger than the budget
// goes alone. `hashes` are in an order where deps come first, so the start
// applies at the peer without the rest.
std::vector<ChangeHash> Fitting(const Document& doc, const std::vector<ChangeHash>& hashes,
                                size_t budget) {
  std::vector<ChangeHash> out;
  size_t used = kEntryOverhead;
  for (const ChangeHash& h : hashes) {
    size_t n = doc.changes().bytes(*doc.IndexOf(h)).size() + kEntryOverhead;
    if (!out.empty() && used + n > budget) break;
    out.push_back(h);
    used += n;
  }
  return out;
}

std::vector<ChangeHash> SortedUnique(std::vector<ChangeHash> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

// Shared heads after we applied changes: our new heads, and the old shared
// heads that are still heads.
std::vector<ChangeHash> AdvanceHeads(const std::vector<ChangeHash>& old_heads,
                                     const std::vector<ChangeHash>& new_heads,
                                     const std::vector<ChangeHash>& old_shared) {
  auto contains = [](const std::vector<ChangeHash>& v, const ChangeHash& h) {
    return std::find(v.begin(), v.end(), h) != v.end();
  };
  std::vector<ChangeHash> out;
  for (const ChangeHash& h : new_heads)
    if (!contains(old_heads, h)) out.push_back(h);
  for (const ChangeHash& h : old_shared)
    if (contains(new_heads, h)) out.push_back(h);
  return SortedUnique(std::move(out));
}

}  // namespace

// --- bloom filter ------------------------------------------------------------------

BloomFilter BloomFilter::FromHashes(const std::vector<ChangeHash>& hashes) {
  BloomFilter f;
  f.num_entries_ = static_cast<uint32_t>(hashes.size());
  f.bits_.assign(BitsBytes(f.num_entries_, f.bits_per_entry_), 0);
  for (const ChangeHash& h : hashes)
    for (uint32_t p : f.Probes(h)) f.bits_[p >> 3] |= uint8_t(1 << (p & 7));
  return f;
}

Result<BloomFilter> BloomFilter::Decode(ByteView bytes) {
  BloomFilter f;
  if (bytes.empty()) return f;
  Reader r(bytes);
  auto entries = r.Uleb32();
  if (!entries.ok()) return entries.status().WithContext("bloom entries");
  auto bits_per_entry = r.Uleb32();
  if (!bits_per_entry.ok()) return bits_per_entry.status().WithContext("bloom bits per entry");
  auto probes = r.Uleb32();
  if (!probes.ok()) return probes.status().WithContext("bloom probes");
  if (*probes > kMaxProbes)
    return Status::Corruption("bloom filter with " + std::to_string(*probes) + " probes (at most " +
                              std::to_string(kMaxProbes) + ")");
  uint64_t n = BitsBytes(*entries, *bits_per_entry);
  if (n > r.remaining())
    return Status::Incomplete("bloom bits: " + std::to_string(n) + " bytes, " +
                              std::to_string(r.remaining()) + " left");
  ByteView bits = *r.Take(n);
  f.num_entries_ = *entries;
  f.bits_per_entry_ = *bits_per_entry;
  f.num_probes_ = *probes;
  f.bits_.assign(bits.begin(), bits.end());
  return f;
}

Bytes BloomFilter::Encode() const {
  Bytes out;
  if (num_entries_ == 0) return out;
  AppendUleb(out, num_entries_);
  AppendUleb(out, bits_per_entry_);
  AppendUleb(out, num_probes_);
  Append(out, bits_);
  return out;
}

std::vector<uint32_t> BloomFilter::Probes(const ChangeHash& hash) const {
  const uint64_t m = uint64_t{8} * bits_.size();
  uint64_t x = Le32(hash, 0) % m;
  uint64_t y = Le32(hash, 4) % m;
  const uint64_t z = Le32(hash, 8) % m;
  std::vector<uint32_t> out{static_cast<uint32_t>(x)};
  for (uint32_t i = 1; i < num_probes_; ++i) {
    x = (x + y) % m;
    y = (y + z) % m;
    out.push_back(static_cast<uint32_t>(x));
  }
  return out;
}

bool BloomFilter::Contains(const ChangeHash& hash) const {
  // With no bits there is nothing to probe (the reference would divide by zero).
  if (num_entries_ == 0 || bits_.empty()) return false;
  for (uint32_t p : Probes(hash))
    if (!(bits_[p >> 3] & (1 << (p & 7)))) return false;
  return true;
}

// --- messages ----------------------------------------------------------------------

Bytes EncodeSyncMessage(const SyncMessage& m) {
  Bytes out{static_cast<uint8_t>(m.version)};
  AppendHashes(out, m.heads);
  AppendHashes(out, m.need);
  AppendUleb(out, m.have.size());
  for (const Have& h : m.have) {
    AppendHashes(out, h.last_sync);
    Bytes bloom = h.bloom.Encode();
    AppendUleb(out, bloom.size());
    Append(out, bloom);
  }
  AppendUleb(out, m.changes.size());
  for (const Bytes& c : m.changes) {
    AppendUleb(out, c.size());
    Append(out, c);
  }
  if (m.flags) {
    AppendUleb(out, 2);
    out.push_back(kLegacyV2Byte);
    out.push_back(kBitfieldMarker | (*m.flags & ~kBitfieldMarker));
  }
  return out;
}

Result<SyncMessage> DecodeSyncMessage(ByteView bytes) {
  Reader r(bytes);
  auto type = r.Byte();
  if (!type.ok()) return Status::Incomplete("sync message: empty");
  SyncMessage m;
  if (*type == static_cast<uint8_t>(SyncMessage::Version::kV1)) {
    m.version = SyncMessage::Version::kV1;
  } else if (*type == static_cast<uint8_t>(SyncMessage::Version::kV2)) {
    m.version = SyncMessage::Version::kV2;
  } else {
    return Status::Corruption("sync message: type byte " + std::to_string(*type) +
                              ", expected 66 (0x42) or 67 (0x43)");
  }
  auto heads = ReadHashes(r, "heads");
  if (!heads.ok()) return heads.status().WithContext("sync message");
  m.heads = std::move(*heads);
  auto need = ReadHashes(r, "need");
  if (!need.ok()) return need.status().WithContext("sync message");
  m.need = std::move(*need);

  auto n_have = r.Uleb();
  if (!n_have.ok()) return n_have.status().WithContext("sync message have count");
  if (*n_have > r.remaining() / 2)  // a Have takes at least two bytes
    return Status::Incomplete("sync message: " + std::to_string(*n_have) +
                              " haves run past the end");
  for (uint64_t i = 0; i < *n_have; ++i) {
    auto have = ReadHave(r);
    if (!have.ok()) return have.status().WithContext("sync message have " + std::to_string(i));
    m.have.push_back(std::move(*have));
  }

  auto n_changes = r.Uleb();
  if (!n_changes.ok()) return n_changes.status().WithContext("sync message change count");
  if (*n_changes > r.remaining())  // an entry takes at least a byte
    return Status::Incomplete("sync message: " + std::to_string(*n_changes) +
                              " change entries run past the end");
  for (uint64_t i = 0; i < *n_changes; ++i) {
    auto entry = r.LengthPrefixed();
    if (!entry.ok())
      return entry.status().WithContext("sync message change entry " + std::to_string(i));
    m.changes.emplace_back(entry->begin(), entry->end());
  }

  if (!r.empty()) {
    auto flags = r.LengthPrefixed();
    if (!flags.ok()) return flags.status().WithContext("sync message flags");
    uint8_t bits = 0;
    for (uint8_t b : *flags)
      if (b & kBitfieldMarker) bits |= b & ~kBitfieldMarker;
    m.flags = bits;
  }
  return m;
}

// --- state ---------------------------------------------------------------------------

void SyncState::SetReadOnly(bool ro) {
  if (read_only == ro) return;
  if (!ro) {
    SyncState fresh;
    fresh.peer_supports_v2 = peer_supports_v2;
    fresh.peer_supports_sync_reset = peer_supports_sync_reset;
    fresh.max_message_bytes = max_message_bytes;
    fresh.needs_reset = true;
    *this = std::move(fresh);
  } else {
    read_only = true;
    in_flight = false;
    have_responded = false;
  }
}

Bytes SyncState::Encode() const {
  Bytes out{kStateType};
  AppendHashes(out, shared_heads);
  return out;
}

Result<SyncState> SyncState::Decode(ByteView bytes) {
  Reader r(bytes);
  auto type = r.Byte();
  if (!type.ok()) return Status::Incomplete("sync state: empty");
  if (*type != kStateType)
    return Status::Corruption("sync state: type byte " + std::to_string(*type) +
                              ", expected 67 (0x43)");
  auto heads = ReadHashes(r, "shared heads");
  if (!heads.ok()) return heads.status().WithContext("sync state");
  SyncState s;
  s.shared_heads = std::move(*heads);
  s.their_have.emplace();  // as the reference: known to be empty, not unknown
  return s;
}

// --- the algorithm ---------------------------------------------------------------------

std::optional<Bytes> GenerateSyncMessage(const Document& doc, SyncState& state) {
  const std::vector<ChangeHash>& our_heads = doc.heads();
  const std::vector<ChangeHash> no_heads;
  const std::vector<ChangeHash>& their_heads = state.their_heads ? *state.their_heads : no_heads;

  // Only what we lack to reach their heads: asking for the deps of unrelated
  // queued changes could block the sync (see Rust missing_deps_from).
  std::vector<ChangeHash> our_need;
  if (!state.read_only) our_need = doc.MissingDepsFrom(their_heads);

  // Our bloom, unless we still lack something they did not announce as a head.
  std::vector<Have> our_have;
  bool need_only_heads = std::all_of(our_need.begin(), our_need.end(), [&](const ChangeHash& h) {
    return std::find(their_heads.begin(), their_heads.end(), h) != their_heads.end();
  });
  if (need_only_heads)
    our_have.push_back(
        Have{state.shared_heads, BloomFilter::FromHashes(HashesSince(doc, state.shared_heads))});

  // They synced with a state of ours that we do not have (we lost data):
  // ask them to start over.
  if (state.their_have && !state.their_have->empty()) {
    const std::vector<ChangeHash>& last_sync = state.their_have->front().last_sync;
    if (!std::all_of(last_sync.begin(), last_sync.end(),
                     [&](const ChangeHash& h) { return Has(doc, h); })) {
      SyncMessage reset;
      reset.heads = our_heads;
      reset.have.push_back(Have{});
      reset.flags = kFlagSupportsSyncReset;
      return EncodeSyncMessage(reset);
    }
  }

  const bool v2 = state.peer_supports_v2;
  // The changes the peer lacks that were not sent yet; computed once needed.
  std::optional<std::vector<ChangeHash>> lacking;
  auto Lacking = [&]() -> const std::vector<ChangeHash>& {
    if (!lacking) {
      lacking.emplace();
      for (const ChangeHash& h : HashesToSend(doc, *state.their_have, *state.their_need))
        if (!state.sent_hashes.count(h)) lacking->push_back(h);
    }
    return *lacking;
  };
  Payload payload;
  if (state.peer_read_only || !state.their_have || !state.their_need) {
    payload = Pack(doc, {}, v2);
  } else if (state.their_heads && state.their_heads->empty() && v2) {
    payload = PackDocument(doc);
  } else if (v2 && Lacking().size() > doc.changes().size() / 3) {
    payload = PackDocument(doc);
  } else {
    payload = Pack(doc, Lacking(), v2);
  }
  if (!payload.hashes.empty() && state.max_message_bytes != SIZE_MAX) {
    // Too large for the channel: the changes that fit, as changes (a
    // document chunk cannot be cut); the peer's next message lacks the rest.
    const SyncMessage bare{payload.version, our_heads, our_need,
                           our_have,        {},        kFlagSupportsSyncReset};
    const size_t base = EncodeSyncMessage(bare).size();
    const size_t budget = state.max_message_bytes > base ? state.max_message_bytes - base : 0;
    if (PayloadBytes(payload) > budget) payload = Pack(doc, Fitting(doc, Lacking(), budget), v2);
  }

  const bool heads_unchanged = state.last_sent_heads == our_heads;
  const bool heads_equal = state.their_heads == our_heads;
  if (heads_unchanged && state.have_responded) {
    if ((heads_equal || state.read_only) && payload.hashes.empty()) return std::nullopt;
    if (state.in_flight) return std::nullopt;
  }

  state.have_responded = true;
  state.last_sent_heads = our_heads;
  state.sent_hashes.insert(payload.hashes.begin(), payload.hashes.end());

  SyncMessage m;
  m.version = payload.version;
  m.heads = our_heads;
  m.need = std::move(our_need);
  m.have = std::move(our_have);
  m.changes = std::move(payload.entries);
  uint8_t flags = kFlagSupportsSyncReset;
  if (state.read_only) flags |= kFlagReadOnly;
  // Switching from read-only to read-write: the peer must resend what we
  // ignored. A peer that knows the reset flag gets it; an older one gets
  // empty heads, which makes it think we lost everything.
  if (state.needs_reset) {
    state.needs_reset = false;
    if (state.peer_supports_sync_reset)
      flags |= kFlagSyncReset;
    else
      m.heads.clear();
  }
  m.flags = flags;
  state.in_flight = true;
  return EncodeSyncMessage(m);
}

Status ReceiveSyncMessage(Document& doc, SyncState& state, ByteView bytes) {
  auto decoded = DecodeSyncMessage(bytes);
  if (!decoded.ok()) return decoded.status();
  SyncMessage& m = *decoded;

  // The document first: it is the only step that can fail, and it fails
  // atomically, so a bad message leaves the state as it was too.
  const std::vector<ChangeHash> before = doc.heads();
  const bool apply = !m.changes.empty() && !state.read_only;
  if (apply) {
    Bytes joined;
    for (const Bytes& entry : m.changes) Append(joined, entry);
    if (Status s = doc.LoadIncremental(joined); !s.ok())
      return s.WithContext("sync message changes");
  }

  state.in_flight = false;
  if (m.flags) {
    // Only peers that know v2 messages send a flags trailer.
    state.peer_supports_v2 = true;
    state.peer_supports_sync_reset = (*m.flags & kFlagSupportsSyncReset) != 0;
    if (*m.flags & kFlagSyncReset) state.sent_hashes.clear();
    state.peer_read_only = (*m.flags & kFlagReadOnly) != 0;
  }
  if (apply) state.shared_heads = AdvanceHeads(before, doc.heads(), state.shared_heads);

  std::vector<ChangeHash> known;
  for (const ChangeHash& h : m.heads)
    if (Has(doc, h)) known.push_back(h);

  // What we sent that they now have need not be remembered.
  if (!state.sent_hashes.empty()) {
    std::vector<bool> theirs = doc.Ancestors(known);
    std::erase_if(state.sent_hashes, [&](const ChangeHash& h) {
      auto i = doc.IndexOf(h);
      return i && theirs[*i];
    });
  }

  if (m.changes.empty() && m.heads == before) state.last_sent_heads = m.heads;

  if (known.size() == m.heads.size()) {
    state.shared_heads = m.heads;
    // A peer with no heads lost everything (or never had it): start over.
    if (m.heads.empty()) {
      state.last_sent_heads.clear();
      state.sent_hashes.clear();
    }
  } else {
    std::vector<ChangeHash> shared = state.shared_heads;
    shared.insert(shared.end(), known.begin(), known.end());
    state.shared_heads = SortedUnique(std::move(shared));
  }

  state.their_have = std::move(m.have);
  state.their_heads = std::move(m.heads);
  state.their_need = std::move(m.need);
  return Status::Ok();
}

}  // namespace etherply::automerge
