// The Automerge sync protocol (FORMAT.md §8; the reference is Rust sync.rs).
//
// Two peers that each hold a Document and, per peer, a SyncState exchange
// messages until neither has anything to send:
//
//   A: GenerateSyncMessage(docA, stateA)       -> m1 (heads, a bloom of A)
//   B: ReceiveSyncMessage(docB, stateB, m1); GenerateSyncMessage -> m2
//      (the changes that A's bloom lacks, and B's own bloom)
//   A: ReceiveSyncMessage(docA, stateA, m2); ... until both generate nothing.
//
// The protocol assumes a reliable, in-order channel; after a loss, a fresh
// SyncState (or one decoded from SyncState::Encode) on either side resumes.
// The message grammar is at the top of sync.cc.
//
// This module is pure: no I/O, no threads, no clock.
// Thread-safety: none; every type here is a value owned by its caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <vector>

#include "automerge/document.h"
#include "automerge/types.h"
#include "base/bytes.h"
#include "base/status.h"

namespace etherply::automerge {

// A bloom filter over change hashes (FORMAT.md §8.2). A filter built here
// uses 10 bits per entry and 7 probes; a decoded one uses the parameters it
// came with. The empty filter contains nothing.
class BloomFilter {
 public:
  BloomFilter() = default;
  static BloomFilter FromHashes(const std::vector<ChangeHash>& hashes);

  // Parses a Have's bloom bytes: empty bytes are the empty filter. Fails with
  // kIncomplete when the bits end early and kCorruption on a bad or
  // too-large LEB128. Bytes after the bits are ignored, as the reference does.
  static Result<BloomFilter> Decode(ByteView bytes);
  // Empty when the filter has no entries.
  Bytes Encode() const;

  // True when every probe of hash is set (false positives are possible);
  // false for a filter with no entries or no bits.
  bool Contains(const ChangeHash& hash) const;

  uint32_t num_entries() const { return num_entries_; }

  friend bool operator==(const BloomFilter&, const BloomFilter&) = default;

 private:
  std::vector<uint32_t> Probes(const ChangeHash& hash) const;

  uint32_t num_entries_ = 0;
  uint32_t bits_per_entry_ = 10;
  uint32_t num_probes_ = 7;
  Bytes bits_;
};

// A summary of what the sender has: every change since last_sync is in bloom.
struct Have {
  std::vector<ChangeHash> last_sync;
  BloomFilter bloom;

  friend bool operator==(const Have&, const Have&) = default;
};

// Bits of the flags trailer (FORMAT.md §8.3).
inline constexpr uint8_t kFlagSyncReset = 0x01;          // forget what you sent me
inline constexpr uint8_t kFlagReadOnly = 0x02;           // I apply no changes
inline constexpr uint8_t kFlagSupportsSyncReset = 0x04;  // I understand kFlagSyncReset

struct SyncMessage {
  enum class Version : uint8_t { kV1 = 0x42, kV2 = 0x43 };

  Version version = Version::kV1;
  std::vector<ChangeHash> heads;  // the sender's heads
  std::vector<ChangeHash> need;   // changes the sender asks for
  std::vector<Have> have;
  // v1: one change chunk per entry. v2: at most one entry, a document chunk
  // or change chunks concatenated. Receivers accept either in both.
  std::vector<Bytes> changes;
  // The flag bits; nullopt when the message has no trailer (a v1-only peer).
  std::optional<uint8_t> flags;

  friend bool operator==(const SyncMessage&, const SyncMessage&) = default;
};

Bytes EncodeSyncMessage(const SyncMessage& message);

// Parses a message. Fails with kCorruption on an unknown type byte or a bad
// LEB128 and with kIncomplete when a field runs past the end. The chunks in
// `changes` are not checked here (ReceiveSyncMessage does). As in the
// reference, hash lists need not be sorted and bytes after the flags trailer
// are ignored.
Result<SyncMessage> DecodeSyncMessage(ByteView bytes);

// What one peer knows about its sync with another, for one document. Only
// shared_heads survives Encode/Decode; the rest belongs to a connection.
struct SyncState {
  // Heads both sides are known to have.
  std::vector<ChangeHash> shared_heads;
  // Our heads when we last sent a message.
  std::vector<ChangeHash> last_sent_heads;
  // What the peer said in its last message (nullopt before any).
  std::optional<std::vector<ChangeHash>> their_heads;
  std::optional<std::vector<ChangeHash>> their_need;
  std::optional<std::vector<Have>> their_have;
  // Changes sent and not yet known to have arrived: never sent again.
  std::set<ChangeHash> sent_hashes;
  // A message went out and no reply has come back yet.
  bool in_flight = false;
  // We have sent at least one message on this connection.
  bool have_responded = false;
  // The peer's capabilities, learnt from the flags trailer of its messages:
  // a trailer means v2 messages; kFlagSupportsSyncReset, sync resets.
  bool peer_supports_v2 = false;
  bool peer_supports_sync_reset = false;
  // The peer declared itself read-only: we send it no changes.
  bool peer_read_only = false;
  // We are read-only: we apply no changes and ask for none.
  bool read_only = false;
  // Our next message asks the peer to forget what it sent us.
  bool needs_reset = false;
  // The most bytes a message of ours may take: a setting of the channel
  // (a transport's largest message), not learnt from the peer. A message
  // that would be larger carries only the changes that fit, the rest going
  // in later rounds; a change larger than this by itself goes alone, in a
  // message over the limit, which the channel must refuse or carry.
  size_t max_message_bytes = SIZE_MAX;

  // Switching to read-write starts the sync afresh (keeping the peer's
  // capabilities) and makes the next message a reset; switching to
  // read-only makes sure a message announcing it goes out.
  void SetReadOnly(bool read_only);

  // The persisted form, exactly as A.encodeSyncState: 43 hashes(shared_heads).
  Bytes Encode() const;
  // A state for a new connection from the persisted form. Fails with
  // kCorruption on another type byte or a bad LEB128 and kIncomplete on
  // truncation; later bytes are ignored, as the reference does.
  static Result<SyncState> Decode(ByteView bytes);

  friend bool operator==(const SyncState&, const SyncState&) = default;
};

// The next message for the peer that `state` describes, or nullopt when
// there is nothing to say (the peer is up to date, or we await its reply).
// Updates `state` (sent hashes, last sent heads, in flight).
//
// When a v2 peer has no heads, or more than a third of our changes are to go,
// the changes go as the reference sends them: one v2 entry holding the whole
// document chunk (Document::Save). Past state.max_message_bytes they go as
// changes instead, as many as fit, in the document's order (each with its
// deps before it), and the rest in the next messages: the peer's answers
// still lack them, as the protocol expects of a lost message.
std::optional<Bytes> GenerateSyncMessage(const Document& doc, SyncState& state);

// Applies a message from the peer: its changes to `doc` (changes whose deps
// are missing are queued) and what it says to `state`. On any failure (a
// malformed message, a bad chunk, a change the document rejects) neither
// `doc` nor `state` changes. A read-only state ignores the changes.
Status ReceiveSyncMessage(Document& doc, SyncState& state, ByteView message);

}  // namespace etherply::automerge
