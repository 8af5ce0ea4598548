// The sync protocol (FORMAT.md §8): the byte forms of messages, blooms and
// persisted states, what decoding refuses, that a refused message changes
// nothing, and two peers that converge however their history diverged and
// whatever the channel lost or repeated. Convergence against the reference
// itself is tests/interop/sync_test.mjs.
#include "automerge/sync.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "automerge/chunk.h"
#include "automerge/transaction.h"
#include "base/coding.h"
#include "base/sha256.h"
#include "base/testutil.h"

namespace etherply::automerge {
namespace {

using Code = Status::Code;
using testutil::B;

const ActorId kA(16, 0x0a);
const ActorId kB(16, 0x0b);
const ActorId kC(16, 0x0c);

ChangeHash HashOf(std::string_view s) { return Sha256Of(AsBytes(s)); }

ChangeHash Put(Document& doc, const ActorId& actor, std::string_view key, int64_t value) {
  Transaction tx(doc, actor);
  EXPECT_TRUE(tx.Put(kRoot, key, value).ok());
  auto r = tx.Commit({.time = 0});
  EXPECT_TRUE(r.ok() && r->has_value());
  return r.ok() && r->has_value() ? **r : ChangeHash{};
}

// n edits by one actor.
void Edits(Document& doc, const ActorId& actor, std::string_view prefix, int n) {
  for (int i = 0; i < n; ++i) Put(doc, actor, std::string(prefix) + std::to_string(i), i);
}

SyncMessage Decoded(ByteView bytes) {
  auto m = DecodeSyncMessage(bytes);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? *m : SyncMessage{};
}

// --- bloom filter --------------------------------------------------------------------

// A hash whose first three LE32 words are x, y, z.
ChangeHash ProbeHash(uint32_t x, uint32_t y, uint32_t z) {
  ChangeHash h{};
  for (int i = 0; i < 4; ++i) {
    h[i] = uint8_t(x >> (8 * i));
    h[4 + i] = uint8_t(y >> (8 * i));
    h[8 + i] = uint8_t(z >> (8 * i));
  }
  return h;
}

TEST(BloomFilter, ProbesFollowTheGrammar) {
  // One entry: 10 bits, so 2 bytes, m = 16. x = 3, y = 1, z = 0 probes bits
  // 3, 4, 5, 6, 7, 8, 9.
  BloomFilter f = BloomFilter::FromHashes({ProbeHash(3, 1, 0)});
  EXPECT_EQ(f.Encode(), B("01 0a 07 f8 03"));
  // x = 19 % 16 = 3, y = 17 % 16 = 1, z = 16 % 16 = 0: the same probes.
  EXPECT_TRUE(f.Contains(ProbeHash(19, 17, 16)));
  // y = 2 probes 3, 5, 7, 9, 11, ...: bit 11 is clear.
  EXPECT_FALSE(f.Contains(ProbeHash(3, 2, 0)));
}

TEST(BloomFilter, HoldsWhatWasAddedAndFewOthers) {
  std::vector<ChangeHash> in, out;
  for (int i = 0; i < 500; ++i) in.push_back(HashOf("in" + std::to_string(i)));
  for (int i = 0; i < 2000; ++i) out.push_back(HashOf("out" + std::to_string(i)));
  BloomFilter f = BloomFilter::FromHashes(in);
  for (const ChangeHash& h : in) EXPECT_TRUE(f.Contains(h));
  int false_positives = 0;
  for (const ChangeHash& h : out) false_positives += f.Contains(h);
  EXPECT_LT(false_positives, 60);  // about 1% expected at 10 bits and 7 probes

  auto back = BloomFilter::Decode(f.Encode());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, f);
  EXPECT_EQ(back->num_entries(), 500u);
}

TEST(BloomFilter, EmptyContainsNothingAndEncodesToNothing) {
  BloomFilter f = BloomFilter::FromHashes({});
  EXPECT_TRUE(f.Encode().empty());
  EXPECT_FALSE(f.Contains(HashOf("x")));
  auto d = BloomFilter::Decode({});
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->Contains(HashOf("x")));
}

TEST(BloomFilter, ParametersComeFromTheWire) {
  // 1 entry, 16 bits per entry (2 bytes), 1 probe: only bit x = 3.
  auto f = BloomFilter::Decode(B("01 10 01 08 00"));
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_TRUE(f->Contains(ProbeHash(3, 5, 9)));
  EXPECT_FALSE(f->Contains(ProbeHash(4, 0, 0)));
  EXPECT_EQ(f->Encode(), B("01 10 01 08 00"));
  // Bytes after the bits are ignored, as the reference does.
  auto g = BloomFilter::Decode(B("01 10 01 08 00 ff ff"));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(*g, *f);
}

TEST(BloomFilter, NoBitsContainsNothingAndDoesNotCrash) {
  // Five entries of zero bits: nothing to probe (the reference divides by zero).
  auto f = BloomFilter::Decode(B("05 00 07"));
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->Contains(HashOf("x")));
}

TEST(BloomFilter, RejectsTruncatedAndMalformed) {
  Bytes good = BloomFilter::FromHashes({HashOf("a"), HashOf("b")}).Encode();
  for (size_t n = 1; n < good.size(); ++n) {
    auto f = BloomFilter::Decode(ByteView(good).first(n));
    EXPECT_EQ(f.status().code(), Code::kIncomplete) << n;
  }
  EXPECT_EQ(BloomFilter::Decode(B("80 00 0a 07")).status().code(), Code::kCorruption);  // overlong
  EXPECT_EQ(BloomFilter::Decode(B("80 80 80 80 10 0a 07")).status().code(),
            Code::kCorruption);  // entries beyond 32 bits
  // Huge parameters just run past the end; nothing is allocated for them.
  EXPECT_EQ(BloomFilter::Decode(B("ff ff ff ff 0f ff ff ff ff 0f 07")).status().code(),
            Code::kIncomplete);
  // A peer may not make every lookup take billions of steps.
  auto many = BloomFilter::Decode(B("01 0a ff ff ff ff 0f 00 00"));
  EXPECT_EQ(many.status().code(), Code::kCorruption);
  EXPECT_NE(many.status().message().find("probes"), std::string::npos);
}

// --- messages ------------------------------------------------------------------------

SyncMessage FullMessage() {
  SyncMessage m;
  m.version = SyncMessage::Version::kV1;
  m.heads = {HashOf("h1"), HashOf("h2")};
  m.need = {HashOf("n1")};
  m.have = {Have{{HashOf("s1")}, BloomFilter::FromHashes({HashOf("b1"), HashOf("b2")})}, Have{}};
  m.changes = {B("01 02 03"), B("")};
  m.flags = kFlagSupportsSyncReset | kFlagReadOnly;
  return m;
}

TEST(SyncMessage, TheEmptyPeersFirstMessage) {
  // FORMAT.md §8.3: no heads, no need, one Have with nothing, no changes, flags.
  Document doc;
  SyncState state;
  auto m = GenerateSyncMessage(doc, state);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(*m, B("42 00 00 01 00 00 00 02 02 84"));
  EXPECT_TRUE(state.in_flight);
  EXPECT_TRUE(state.have_responded);
}

TEST(SyncMessage, RoundTrips) {
  for (auto version : {SyncMessage::Version::kV1, SyncMessage::Version::kV2}) {
    SyncMessage m = FullMessage();
    m.version = version;
    Bytes bytes = EncodeSyncMessage(m);
    EXPECT_EQ(bytes[0], static_cast<uint8_t>(version));
    auto back = DecodeSyncMessage(bytes);
    ASSERT_TRUE(back.ok()) << back.status().ToString();
    EXPECT_EQ(*back, m);
  }
  SyncMessage bare;  // no trailer: a v1-only peer
  auto back = DecodeSyncMessage(EncodeSyncMessage(bare));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->flags.has_value());
  EXPECT_EQ(*back, bare);
}

TEST(SyncMessage, FlagsTrailer) {
  SyncMessage m;
  m.flags = kFlagSyncReset | kFlagSupportsSyncReset;
  Bytes bytes = EncodeSyncMessage(m);
  EXPECT_EQ(Bytes(bytes.end() - 3, bytes.end()), B("02 02 85"));
  // An old peer's trailer (01 02: "supports v2") carries no bits but is there.
  auto old = DecodeSyncMessage(B("42 00 00 00 00 01 02"));
  ASSERT_TRUE(old.ok());
  EXPECT_EQ(old->flags, uint8_t{0});
  // An empty trailer is a trailer too; every byte with the high bit adds bits.
  EXPECT_EQ(Decoded(B("42 00 00 00 00 00")).flags, uint8_t{0});
  EXPECT_EQ(Decoded(B("42 00 00 00 00 03 81 02 84")).flags, uint8_t{0x05});
}

TEST(SyncMessage, EveryTruncationIsRejected) {
  Bytes bytes = EncodeSyncMessage(FullMessage());
  const size_t without_flags = bytes.size() - 3;  // a message may end before its trailer
  for (size_t n = 0; n < bytes.size(); ++n) {
    auto m = DecodeSyncMessage(ByteView(bytes).first(n));
    if (n == without_flags) {
      EXPECT_TRUE(m.ok()) << m.status().ToString();
      continue;
    }
    EXPECT_FALSE(m.ok()) << "prefix of " << n << " bytes accepted";
    EXPECT_EQ(m.status().code(), Code::kIncomplete) << n << ": " << m.status().ToString();
  }
}

TEST(SyncMessage, RejectsMalformed) {
  struct Case {
    const char* name;
    Bytes bytes;
    Code code;
  };
  const Case cases[] = {
      {"empty", B(""), Code::kIncomplete},
      {"type 44", B("44 00 00 00 00"), Code::kCorruption},
      {"a state, not a message", B("43"), Code::kIncomplete},
      {"overlong head count", B("42 80 00 00 00 00"), Code::kCorruption},
      {"2^60 heads", B("42 80 80 80 80 80 80 80 80 10"), Code::kIncomplete},
      {"a head cut short", B("42 01 aa bb"), Code::kIncomplete},
      {"2^40 haves", B("42 00 00 80 80 80 80 80 20 00"), Code::kIncomplete},
      {"bloom cut short", B("42 00 00 01 00 04 01 0a 07 00"), Code::kIncomplete},
      {"bloom length past the end", B("42 00 00 01 00 09 01"), Code::kIncomplete},
      {"change entry past the end", B("42 00 00 00 01 05 85 6f"), Code::kIncomplete},
      {"2^35 change entries", B("42 00 00 00 80 80 80 80 80 01"), Code::kIncomplete},
      {"flags past the end", B("42 00 00 00 00 05 02"), Code::kIncomplete},
      {"flags length overlong", B("42 00 00 00 00 82 00"), Code::kCorruption},
  };
  for (const Case& c : cases) {
    auto m = DecodeSyncMessage(c.bytes);
    EXPECT_FALSE(m.ok()) << c.name;
    EXPECT_EQ(m.status().code(), c.code) << c.name << ": " << m.status().ToString();
    EXPECT_FALSE(m.status().message().empty()) << c.name;
  }
}

TEST(SyncMessage, BytesAfterTheTrailerAreIgnoredAsByTheReference) {
  Bytes bytes = EncodeSyncMessage(FullMessage());
  Bytes longer = bytes;
  Append(longer, B("de ad be ef"));
  auto m = DecodeSyncMessage(longer);
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(*m, FullMessage());
}

// --- persisted state ---------------------------------------------------------------

TEST(SyncState, EncodesOnlyTheSharedHeads) {
  SyncState s;
  s.shared_heads = {HashOf("a"), HashOf("b")};
  s.last_sent_heads = {HashOf("c")};
  s.sent_hashes = {HashOf("d")};
  s.in_flight = s.have_responded = s.peer_supports_v2 = true;
  Bytes bytes = s.Encode();
  Bytes expected = B("43 02");
  Append(expected, HashOf("a"));
  Append(expected, HashOf("b"));
  EXPECT_EQ(bytes, expected);
  EXPECT_EQ(SyncState().Encode(), B("43 00"));

  auto back = SyncState::Decode(bytes);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  SyncState fresh;  // a new connection: nothing sent, nothing heard
  fresh.shared_heads = s.shared_heads;
  fresh.their_have.emplace();
  EXPECT_EQ(*back, fresh);
}

TEST(SyncState, DecodeRejectsTruncatedAndForeign) {
  Bytes bytes = B("43 01");
  Append(bytes, HashOf("a"));
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_EQ(SyncState::Decode(ByteView(bytes).first(n)).status().code(), Code::kIncomplete) << n;
  EXPECT_EQ(SyncState::Decode(B("42 00")).status().code(), Code::kCorruption);
  EXPECT_EQ(SyncState::Decode(B("43 80 00")).status().code(), Code::kCorruption);
  Bytes longer = bytes;
  longer.push_back(0x99);  // ignored, as the reference does
  auto s = SyncState::Decode(longer);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->shared_heads, std::vector<ChangeHash>{HashOf("a")});
}

// --- two peers -------------------------------------------------------------------------

struct Peer {
  Document doc;
  SyncState state;
  std::map<ChangeHash, int> received;  // how often each change arrived
  std::set<SyncMessage::Version> versions_received;
  bool strips_flags = false;  // plays a v1-only peer: its messages lose the trailer
  size_t largest_sent = 0;    // the largest message it generated
};

// The changes a message carries.
std::vector<ChangeHash> Carried(const SyncMessage& m) {
  std::vector<ChangeHash> out;
  for (const Bytes& entry : m.changes) {
    auto changes = DecodeChangeChunks(entry);
    EXPECT_TRUE(changes.ok()) << changes.status().ToString();
    if (changes.ok())
      for (const StoredChange& c : *changes) out.push_back(c.hash);
  }
  return out;
}

std::optional<Bytes> Generate(Peer& from) {
  auto bytes = GenerateSyncMessage(from.doc, from.state);
  if (bytes && from.strips_flags) {
    SyncMessage m = Decoded(*bytes);
    m.flags.reset();
    *bytes = EncodeSyncMessage(m);
  }
  if (bytes) from.largest_sent = std::max(from.largest_sent, bytes->size());
  return bytes;
}

void Deliver(const Bytes& bytes, Peer& to) {
  SyncMessage m = Decoded(bytes);
  for (const ChangeHash& h : Carried(m)) ++to.received[h];
  to.versions_received.insert(m.version);
  Status s = ReceiveSyncMessage(to.doc, to.state, bytes);
  EXPECT_TRUE(s.ok()) << s.ToString();
}

// Generates from `from`; unless dropped, delivers it to `to` (twice if
// duplicated). Returns whether `from` had something to say.
bool Step(Peer& from, Peer& to, bool drop = false, bool duplicate = false) {
  auto bytes = Generate(from);
  if (!bytes) return false;
  if (drop) return true;
  for (int i = 0; i < (duplicate ? 2 : 1); ++i) Deliver(*bytes, to);
  return true;
}

// Exchanges messages until neither side has anything to say. Returns the
// number of rounds, or -1 if that did not happen within max_rounds.
int SyncUntilQuiet(Peer& a, Peer& b, int max_rounds = 50) {
  for (int round = 1; round <= max_rounds; ++round) {
    bool ab = Step(a, b);
    bool ba = Step(b, a);
    if (!ab && !ba) return round;
  }
  return -1;
}

void ExpectConverged(const Peer& a, const Peer& b) {
  EXPECT_EQ(a.doc.heads(), b.doc.heads());
  EXPECT_EQ(a.doc.ToJson(), b.doc.ToJson());
  EXPECT_EQ(a.doc.changes().size(), b.doc.changes().size());
  EXPECT_EQ(a.doc.queued(), 0u);
  EXPECT_EQ(b.doc.queued(), 0u);
}

void ExpectNothingTwice(const Peer& p) {
  for (const auto& [hash, n] : p.received) EXPECT_EQ(n, 1) << "a change arrived " << n << " times";
}

TEST(Sync, TwoEmptyPeersSayHelloAndStop) {
  Peer a, b;
  EXPECT_EQ(SyncUntilQuiet(a, b), 2);
  EXPECT_TRUE(a.doc.heads().empty());
  EXPECT_FALSE(GenerateSyncMessage(a.doc, a.state).has_value());
}

TEST(Sync, DivergentPeersConvergeAndSendNothingTwice) {
  // Few changes to send (at most a third), so they go one by one.
  Peer a, b;
  Edits(a.doc, kC, "common", 9);
  ASSERT_TRUE(b.doc.ApplyChanges({a.doc.changes().begin(), a.doc.changes().end()}).ok());
  Edits(a.doc, kA, "a", 4);
  Edits(b.doc, kB, "b", 3);
  ASSERT_GT(SyncUntilQuiet(a, b), 0);
  ExpectConverged(a, b);
  ExpectNothingTwice(a);
  ExpectNothingTwice(b);
  // Neither re-sent the common history.
  EXPECT_EQ(a.received.size(), 3u);
  EXPECT_EQ(b.received.size(), 4u);
  EXPECT_EQ(a.state.shared_heads, a.doc.heads());
  EXPECT_EQ(b.state.shared_heads, b.doc.heads());
}

TEST(Sync, AnEmptyPeerOnEitherSideGetsEverything) {
  for (bool empty_first : {true, false}) {
    Peer full, empty;
    Edits(full.doc, kA, "k", 10);
    ASSERT_GT(empty_first ? SyncUntilQuiet(empty, full) : SyncUntilQuiet(full, empty), 0);
    ExpectConverged(full, empty);
    ExpectNothingTwice(empty);
    EXPECT_EQ(empty.received.size(), 10u);
    EXPECT_TRUE(full.received.empty());
  }
}

TEST(Sync, AV2PeerWithNoHeadsGetsOneEntryOfEveryChange) {
  Peer full, empty;
  Edits(full.doc, kA, "k", 4);
  Edits(full.doc, kB, "j", 3);
  ASSERT_TRUE(Step(empty, full));  // the empty peer's hello, with flags
  auto reply = GenerateSyncMessage(full.doc, full.state);
  ASSERT_TRUE(reply.has_value());
  SyncMessage m = Decoded(*reply);
  EXPECT_EQ(m.version, SyncMessage::Version::kV2);
  ASSERT_EQ(m.changes.size(), 1u);
  EXPECT_EQ(Carried(m).size(), 7u);
  EXPECT_EQ(full.state.sent_hashes.size(), 7u);
}

TEST(Sync, AV1OnlyPeerGetsV1MessagesWithOneChangeAnEntry) {
  Peer full, old;
  old.strips_flags = true;
  Edits(full.doc, kA, "k", 6);
  Edits(old.doc, kB, "o", 2);
  ASSERT_TRUE(Step(old, full));
  EXPECT_FALSE(full.state.peer_supports_v2);
  auto reply = GenerateSyncMessage(full.doc, full.state);
  ASSERT_TRUE(reply.has_value());
  SyncMessage m = Decoded(*reply);
  EXPECT_EQ(m.version, SyncMessage::Version::kV1);
  EXPECT_EQ(m.changes.size(), 6u);
  ASSERT_TRUE(m.flags.has_value());  // we still announce ourselves
  ASSERT_TRUE(ReceiveSyncMessage(old.doc, old.state, *reply).ok());
  ASSERT_GT(SyncUntilQuiet(full, old), 0);
  ExpectConverged(full, old);
  EXPECT_EQ(old.versions_received, std::set{SyncMessage::Version::kV1});
}

TEST(Sync, ManyChangesToAV2PeerGoAsOneEntry) {
  Peer a, b;
  Edits(a.doc, kA, "common", 3);
  ASSERT_TRUE(b.doc.ApplyChanges({a.doc.changes().begin(), a.doc.changes().end()}).ok());
  Edits(a.doc, kA, "more", 6);  // 6 of 9 to send: more than a third
  ASSERT_TRUE(Step(b, a));
  auto reply = GenerateSyncMessage(a.doc, a.state);
  ASSERT_TRUE(reply.has_value());
  SyncMessage m = Decoded(*reply);
  EXPECT_EQ(m.version, SyncMessage::Version::kV2);
  ASSERT_EQ(m.changes.size(), 1u);
  EXPECT_EQ(Carried(m).size(), 9u);  // like the reference's whole document
  ASSERT_TRUE(ReceiveSyncMessage(b.doc, b.state, *reply).ok());
  ASSERT_GT(SyncUntilQuiet(a, b), 0);
  ExpectConverged(a, b);
}

// n edits by one actor, each of a 100-character value that compresses
// little (hex of a hash).
void LargeEdits(Document& doc, const ActorId& actor, std::string_view prefix, int n) {
  for (int i = 0; i < n; ++i) {
    std::string key = std::string(prefix) + std::to_string(i);
    std::string value = HashToHex(HashOf(key)) + HashToHex(HashOf(key + "'"));
    Transaction tx(doc, actor);
    ASSERT_TRUE(tx.Put(kRoot, key, value.substr(0, 100)).ok());
    ASSERT_TRUE(tx.Commit({.time = 0}).ok());
  }
}

TEST(Sync, ACappedPeerSendsWhatFitsAndTheRestInLaterRounds) {
  // 60 changes of some 150 bytes, whose document chunk is over 1,000 bytes
  // too: under a 1,000-byte cap they take several messages, each within
  // the cap, whatever the peer has (nothing, which would get the whole
  // document chunk; part of them; or it is a v1 peer).
  for (int variant = 0; variant < 3; ++variant) {
    for (bool full_first : {true, false}) {
      Peer full, other;
      full.state.max_message_bytes = 1000;
      LargeEdits(full.doc, kA, "common", variant == 1 ? 5 : 0);
      ASSERT_TRUE(
          other.doc.ApplyChanges({full.doc.changes().begin(), full.doc.changes().end()}).ok());
      LargeEdits(full.doc, kA, "key", 30);
      LargeEdits(full.doc, kB, "other", 30 - (variant == 1 ? 5 : 0));
      ASSERT_GT(full.doc.Save().size(), 2000u);
      other.strips_flags = variant == 2;
      ASSERT_GT(full_first ? SyncUntilQuiet(full, other, 200) : SyncUntilQuiet(other, full, 200),
                0);
      ExpectConverged(full, other);
      ExpectNothingTwice(other);
      EXPECT_LE(full.largest_sent, 1000u) << "variant " << variant;
      EXPECT_EQ(other.received.size(), variant == 1 ? 55u : 60u);
    }
  }
}

TEST(Sync, AChangeLargerThanTheCapGoesAloneAndTheSyncGoesOn) {
  Peer full, empty;
  full.state.max_message_bytes = 40;  // less than any change
  Edits(full.doc, kA, "k", 5);
  ASSERT_TRUE(Step(empty, full));
  for (int i = 0; i < 5; ++i) {
    auto m = GenerateSyncMessage(full.doc, full.state);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(Carried(Decoded(*m)).size(), 1u) << "message " << i;
    Deliver(*m, empty);
    ASSERT_TRUE(Step(empty, full));
  }
  ASSERT_GT(SyncUntilQuiet(full, empty), 0);
  ExpectConverged(full, empty);
  ExpectNothingTwice(empty);
}

TEST(Sync, RestartedFromPersistedStateOnEitherSide) {
  for (int restarting = 0; restarting < 2; ++restarting) {
    Peer a, b;
    Edits(a.doc, kA, "a", 10);
    ASSERT_GT(SyncUntilQuiet(a, b), 0);
    ExpectConverged(a, b);
    // Both edit (less than a third of the history, so one by one); then one side restarts from its
    // persisted state, the other starts a new connection.
    Edits(a.doc, kA, "a2", 2);
    Edits(b.doc, kB, "b2", 3);
    Peer& r = restarting ? a : b;
    Peer& other = restarting ? b : a;
    auto persisted = SyncState::Decode(r.state.Encode());
    ASSERT_TRUE(persisted.ok());
    r.state = *persisted;
    other.state = SyncState();
    a.received.clear();
    b.received.clear();
    ASSERT_GT(SyncUntilQuiet(a, b), 0);
    ExpectConverged(a, b);
    ExpectNothingTwice(a);
    ExpectNothingTwice(b);
    EXPECT_EQ(a.received.size(), 3u);
    EXPECT_EQ(b.received.size(), 2u);
  }
}

TEST(Sync, APeerThatLostItsDataIsResetAndRefilled) {
  Peer a, b;
  Edits(a.doc, kA, "a", 4);
  ASSERT_GT(SyncUntilQuiet(a, b), 0);
  SyncState kept = a.state;  // a remembers b's heads...
  Peer fresh;                // ...but b comes back empty, with a persisted state
  auto persisted = SyncState::Decode(b.state.Encode());
  ASSERT_TRUE(persisted.ok());
  fresh.state = *persisted;
  a.state = SyncState::Decode(kept.Encode()).value();
  ASSERT_GT(SyncUntilQuiet(fresh, a), 0);
  ExpectConverged(a, fresh);
}

TEST(Sync, ConvergesDespiteDroppedMessages) {
  for (int drop_at = 0; drop_at < 6; ++drop_at) {
    Peer a, b;
    Edits(a.doc, kA, "a", 5);
    Edits(b.doc, kB, "b", 4);
    int sent = 0;
    bool stalled = false;
    for (int round = 0; round < 10; ++round) {
      bool ab = Step(a, b, /*drop=*/sent++ == drop_at);
      bool ba = Step(b, a, /*drop=*/sent++ == drop_at);
      if (!ab && !ba) {
        stalled = true;
        break;
      }
    }
    ASSERT_TRUE(stalled) << "the exchange did not stop after a loss at " << drop_at;
    // A lost message leaves a side waiting: a new connection resumes.
    a.state = SyncState::Decode(a.state.Encode()).value();
    b.state = SyncState::Decode(b.state.Encode()).value();
    ASSERT_GT(SyncUntilQuiet(a, b), 0) << drop_at;
    ExpectConverged(a, b);
  }
}

TEST(Sync, ConvergesDespiteDuplicatedMessages) {
  for (int dup_at = 0; dup_at < 6; ++dup_at) {
    Peer a, b;
    Edits(a.doc, kA, "a", 5);
    Edits(b.doc, kB, "b", 4);
    int sent = 0;
    int round = 0;
    for (; round < 30; ++round) {
      bool ab = Step(a, b, false, /*duplicate=*/sent++ == dup_at);
      bool ba = Step(b, a, false, /*duplicate=*/sent++ == dup_at);
      if (!ab && !ba) break;
    }
    EXPECT_LT(round, 30) << dup_at;
    ExpectConverged(a, b);
  }
}

// Both sides speak at once each round, so messages cross: a side hears a
// bloom made before its last changes arrived, and must not resend them.
TEST(Sync, CrossingMessagesWithEditsSendNothingTwice) {
  Peer a, b;
  Edits(a.doc, kC, "common", 12);
  ASSERT_TRUE(b.doc.ApplyChanges({a.doc.changes().begin(), a.doc.changes().end()}).ok());
  int round = 0;
  for (; round < 50; ++round) {
    if (round < 4) {
      Put(a.doc, kA, "a" + std::to_string(round), round);
      Put(b.doc, kB, "b" + std::to_string(round), round);
    }
    auto to_b = Generate(a);
    auto to_a = Generate(b);
    if (!to_a && !to_b) break;
    if (to_b) Deliver(*to_b, b);
    if (to_a) Deliver(*to_a, a);
  }
  EXPECT_LT(round, 50);
  ExpectConverged(a, b);
  ExpectNothingTwice(a);
  ExpectNothingTwice(b);
  EXPECT_EQ(a.received.size(), 4u);
  EXPECT_EQ(b.received.size(), 4u);
}

TEST(Sync, EditsDuringTheSyncArriveToo) {
  Peer a, b;
  Edits(a.doc, kA, "a", 3);
  for (int round = 0; round < 6; ++round) {
    Put(round % 2 ? a.doc : b.doc, round % 2 ? kA : kB, "live" + std::to_string(round), round);
    Step(a, b);
    Step(b, a);
  }
  ASSERT_GT(SyncUntilQuiet(a, b), 0);
  ExpectConverged(a, b);
  ExpectNothingTwice(a);
  ExpectNothingTwice(b);
}

TEST(Sync, ChangesWithMissingDepsAreQueuedAndAskedFor) {
  Peer a, b;
  Edits(a.doc, kA, "a", 4);
  // b gets a's last change alone: it must queue it and ask for its deps.
  ASSERT_TRUE(b.doc.ApplyChanges({a.doc.changes().back()}).ok());
  EXPECT_EQ(b.doc.queued(), 1u);
  ASSERT_GT(SyncUntilQuiet(b, a), 0);
  ExpectConverged(a, b);
}

TEST(Sync, AReadOnlyPeerAppliesNothingAndIsSentNothing) {
  Peer a, ro;
  ro.state.SetReadOnly(true);
  Edits(a.doc, kA, "a", 3);
  ASSERT_GT(SyncUntilQuiet(a, ro), 0);
  EXPECT_TRUE(ro.doc.heads().empty());
  EXPECT_TRUE(a.state.peer_read_only);
  EXPECT_TRUE(ro.received.empty());
  // Back to read-write: the reset flag makes a send everything.
  ro.state.SetReadOnly(false);
  ASSERT_GT(SyncUntilQuiet(ro, a), 0);
  ExpectConverged(a, ro);
}

// --- a bad message changes nothing -------------------------------------------------------

TEST(Sync, ARefusedMessageChangesNeitherDocumentNorState) {
  Peer a, b;
  Edits(a.doc, kA, "a", 3);
  Edits(b.doc, kB, "b", 2);
  ASSERT_TRUE(Step(a, b));
  auto good = GenerateSyncMessage(b.doc, b.state);  // b's changes, for a
  ASSERT_TRUE(good.has_value());

  // A's own actor again with seq 1: valid bytes, but a already has seq 1-3.
  Document other;
  Put(other, kA, "clash", 1);
  SyncMessage wrong_seq = Decoded(*good);
  wrong_seq.changes = {other.changes().bytes(0)};
  SyncMessage bad_checksum = Decoded(*good);
  ASSERT_EQ(bad_checksum.changes.size(), 1u);
  bad_checksum.changes[0][5] ^= 0xff;
  SyncMessage truncated_chunk = Decoded(*good);
  truncated_chunk.changes[0].pop_back();
  SyncMessage garbage_chunk = Decoded(*good);
  garbage_chunk.changes = {B("00 01 02 03")};
  Bytes wrong_type = *good;
  wrong_type[0] = 0x41;

  const std::vector<std::pair<const char*, Bytes>> bad = {
      {"truncated message", Bytes(good->begin(), good->end() - 5)},
      {"wrong type", wrong_type},
      {"change with a seq out of order", EncodeSyncMessage(wrong_seq)},
      {"chunk with a bad checksum", EncodeSyncMessage(bad_checksum)},
      {"chunk cut short", EncodeSyncMessage(truncated_chunk)},
      {"not a chunk", EncodeSyncMessage(garbage_chunk)},
  };
  for (const auto& [name, bytes] : bad) {
    const SyncState state_before = a.state;
    const std::string json_before = a.doc.ToJson();
    const std::vector<ChangeHash> heads_before = a.doc.heads();
    const size_t queued_before = a.doc.queued();
    Status s = ReceiveSyncMessage(a.doc, a.state, bytes);
    EXPECT_FALSE(s.ok()) << name;
    EXPECT_FALSE(s.message().empty()) << name;
    EXPECT_EQ(a.state, state_before) << name;
    EXPECT_EQ(a.doc.ToJson(), json_before) << name;
    EXPECT_EQ(a.doc.heads(), heads_before) << name;
    EXPECT_EQ(a.doc.queued(), queued_before) << name;
  }
  // The good message still applies, and the sync completes.
  ASSERT_TRUE(ReceiveSyncMessage(a.doc, a.state, *good).ok());
  ASSERT_GT(SyncUntilQuiet(a, b), 0);
  ExpectConverged(a, b);
}

}  // namespace
}  // namespace etherply::automerge
