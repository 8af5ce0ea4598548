// An Automerge document: the op set, the change graph and its queue.
//
// A Document holds every change it has applied (their exact bytes and hashes)
// and the op set they build: maps, lists and text with conflicts, counters
// and tombstones, as the reference does (FORMAT.md §7).
//
//  - ApplyChanges takes changes in any order: a change whose deps are not all
//    present waits in a queue until they arrive; a change already known is
//    ignored. It is atomic: if any change in the batch fails, the document,
//    its queue included, is exactly as it was before the call. A change
//    queued by an earlier call that fails once its deps are here is
//    malformed and can never apply: it leaves the queue, and the call goes
//    on without it (the reference, too, drops a queued change that fails).
//  - Local edits go through a Transaction (transaction.h).
//  - Object IDs cross the API as ObjIds; as text they are "_root" or
//    "<counter>@<actor hex>", as the reference writes them.
//
// Thread-safety: none. A Document is owned by one thread (or strand) at a
// time; a Transaction borrows it exclusively until commit or rollback.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "automerge/change.h"
#include "automerge/change_log.h"
#include "automerge/chunk.h"
#include "automerge/op_set.h"
#include "automerge/sequence.h"
#include "automerge/types.h"

namespace etherply::automerge {

class Transaction;

// A point in a document's history: the causal past of a set of heads, as the
// greatest op counter of each actor's changes in it. Actor indices are the
// document's.
class Clock {
 public:
  bool Includes(const OpId& id) const {
    return id.actor < max_.size() && id.counter <= max_[id.actor];
  }

 private:
  friend class Document;
  std::vector<uint32_t> max_;
};

// An object's ID: the ID of the op that made it; the root is OpId{}.
using ObjId = OpId;
inline constexpr ObjId kRoot{};

// What a read returns for one key or element: a scalar, or an object.
struct Value {
  std::variant<ScalarValue, ObjId> v;
  std::optional<ObjType> obj_type;  // set when v holds an ObjId
  OpId id;                          // the op that holds the value

  bool is_object() const { return v.index() == 1; }
};

// A value read whole, detached from its document: a scalar with its type,
// or an object's type and contents (a map's keys with their values, a
// list's elements, a text's characters), as it shows now or at a clock.
// What it takes to write the same value again (marks and conflicts are not
// kept). Same() compares types too, and doubles bit for bit: -0 is not 0.
struct ValueTree {
  ScalarValue scalar;                                     // when !obj_type
  std::optional<ObjType> obj_type;                        // an object's
  std::vector<std::pair<std::string, ValueTree>> fields;  // a map's or table's
  std::vector<ValueTree> items;                           // a list's
  std::string text;                                       // a text's (UTF-8)

  bool Same(const ValueTree& other) const;
};

class Document {
 public:
  Document();
  ~Document();
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;

  // --- history --------------------------------------------------------------

  // How deep objects may nest: the root is at depth 0, an object in a root
  // key at depth 1. A deeper object is refused like a malformed op, by
  // ApplyChanges, LoadIncremental and transactions alike, so that every
  // reader may walk a document recursively (JSON, ValueTree, undo) within a
  // thread's stack. The reference has no such limit, and its own toJS
  // overflows the JavaScript stack on a document 200,000 objects deep.
  static constexpr size_t kMaxDepth = 1024;

  // Applies changes as described above. Returns kCorruption (with the change
  // hash in the message) for a change of `changes` that is malformed for
  // this document: an op on a missing object or element, a key of the wrong
  // kind, a sequence number out of order, an object deeper than kMaxDepth.
  // (A queued one is dropped instead: the changes that complete its deps are
  // not refused for it.)
  Status ApplyChanges(std::vector<StoredChange> changes);
  // Parses a file of concatenated change chunks and applies them.
  Status LoadIncremental(ByteView bytes);
  // The compact form of the document, as the reference's save() writes it:
  // one document chunk (document_chunk.h; columns of 256 bytes or more
  // deflated), then the queued changes' chunks. Loading it gives back the
  // same changes, heads and op set. Must not be called inside a transaction.
  Bytes Save() const;

  // Heads, sorted ascending.
  const std::vector<ChangeHash>& heads() const { return heads_; }
  // Applied changes in the order they were applied (a topological order),
  // as rows of a ChangeLog: changes()[i] makes row i's StoredChange (no ops).
  const ChangeLog& changes() const { return changes_; }
  // The applied change with this hash (made on demand), if present.
  std::optional<StoredChange> GetChange(const ChangeHash& hash) const;
  bool HasChange(const ChangeHash& hash) const { return changes_.Contains(hash); }
  // Hashes named as deps by queued changes that the document does not have.
  std::vector<ChangeHash> MissingDeps() const;
  // The first hash on each path back from `start` that the document neither
  // has nor holds queued, walking through the deps of queued changes; sorted.
  // What the document lacks to reach `start` (a peer's heads, in sync).
  std::vector<ChangeHash> MissingDepsFrom(const std::vector<ChangeHash>& start) const;
  size_t queued() const { return queue_.size(); }
  // Called with why, once ApplyChanges or LoadIncremental has succeeded, for
  // each change an earlier call queued that it dropped as malformed (see
  // above); for the owner to report. None by default.
  using DropHandler = std::function<void(const Status& why)>;
  void OnDropped(DropHandler handler) { on_dropped_ = std::move(handler); }
  uint32_t max_op() const { return max_op_; }

  // --- reading ----------------------------------------------------------------

  std::optional<ObjType> TypeOf(const ObjId& obj) const;
  // The winning value at a map key / list index; nullopt when absent.
  std::optional<Value> Get(const ObjId& obj, std::string_view key) const;
  std::optional<Value> Get(const ObjId& obj, size_t index) const;
  // Every value at a map key (the winner last): more than one is a conflict.
  std::vector<Value> GetAll(const ObjId& obj, std::string_view key) const;
  // Visible keys of a map, in the reference's order (UTF-8 byte order).
  std::vector<std::string> Keys(const ObjId& obj) const;
  // Visible length of a list or text (text counts Unicode code points).
  size_t Length(const ObjId& obj) const;
  // The characters of a text object (marks skipped, non-string elements as
  // U+FFFC).
  std::string Text(const ObjId& obj) const;

  // The whole document as JSON text (see json.h for the mapping); with a
  // clock, as it was at that point of its history (A.view in the reference).
  std::string ToJson(const Clock* at = nullptr) const;
  // The JSON of one root key's value (nullopt if absent), now or at a clock.
  std::optional<std::string> RootValueJson(std::string_view key, const Clock* at = nullptr) const;
  // One root key's value as a ValueTree (nullopt if absent), now or at a
  // clock: at most kMaxDepth objects deep.
  std::optional<ValueTree> RootValueTree(std::string_view key, const Clock* at = nullptr) const;
  // The root keys with a value, now or at a clock.
  std::vector<std::string> RootKeys(const Clock* at = nullptr) const;

  // --- history ----------------------------------------------------------------

  // The clock of a set of heads; kNotFound naming a hash the document lacks.
  Result<Clock> ClockAt(const std::vector<ChangeHash>& heads) const;
  // Which changes (indices into changes()) are in the causal past of heads.
  std::vector<bool> Ancestors(const std::vector<ChangeHash>& heads) const;
  // The changes not in the causal past of `heads` (hashes the document lacks
  // are ignored), as indices into changes() in application order: what a
  // peer at `heads` is missing.
  std::vector<uint32_t> ChangesSince(const std::vector<ChangeHash>& heads) const;
  // An actor's change with this seq (1 is its first), if present.
  std::optional<StoredChange> ChangeOfActor(const ActorId& actor, uint64_t seq) const;
  // Index of a change in changes(), if present.
  std::optional<size_t> IndexOf(const ChangeHash& hash) const;

  // Where an object sits, from the root: a JSON array of map keys (strings)
  // and list indexes (numbers; an element no longer visible by its ID,
  // "<counter>@<actor>"). The root is [].
  std::string PathJson(const ObjId& obj) const;
  // The root key under which an object sits; nullopt for the root.
  std::optional<std::string> RootKeyOf(const ObjId& obj) const;
  // The object made by op (counter, actor), if the document has it.
  std::optional<ObjId> FindObject(const ActorId& actor, uint32_t counter) const;

  std::string ExportObjId(const ObjId& obj) const;
  Result<ObjId> ImportObjId(std::string_view s) const;
  const ActorId& actor(uint32_t index) const { return actors_[index]; }

 private:
  friend class Transaction;

  friend class DocReader;

  // kCorruption for an op that makes an object deeper than kMaxDepth.
  static Status TooDeep();

  struct MapObject {
    std::map<std::string, Slot, std::less<>> keys;
  };
  struct Object {
    ObjType type;
    uint16_t depth;  // the root's is 0; at most kMaxDepth
    ObjId parent;
    Key key;  // where it sits in its parent: a map key or its list element
    std::variant<MapObject, Sequence> data;

    // A new, empty object: a map's keys or a list's or text's sequence.
    static Object New(ObjType type, uint16_t depth, ObjId parent, Key key) {
      Object o{type, depth, parent, std::move(key), MapObject{}};
      if (IsSequence(type)) o.data = Sequence();
      return o;
    }

    MapObject& map() { return std::get<MapObject>(data); }
    const MapObject& map() const { return std::get<MapObject>(data); }
    Sequence& seq() { return std::get<Sequence>(data); }
    const Sequence& seq() const { return std::get<Sequence>(data); }
  };

  // What an op changed, so that it can be taken back (newest first).
  struct Undo {
    enum class Kind { kOpStored, kSuccAdded, kElementInserted, kObjectCreated, kActorAdded };
    Kind kind;
    ObjId obj{};
    std::string prop{};  // map key, when the slot is a map key
    OpId elem{};         // list element, when the slot is an element
    OpId target{};       // the op stored or inserted, or the op that got a successor
    OpId succ{};         // the successor added
    Action action = Action::kSet;  // the successor's action
    int64_t amount = 0;            // an increment's amount, if it counted
    bool counted = false;          // an increment added to a counter (did not hide it)
  };

  // Applies one op with document-global IDs. On failure nothing of this op
  // stays applied (the ops before it are undone by the caller).
  Status ApplyOp(const ChangeOp& op, OpId id);
  Status ApplyToSlot(Slot& slot, const ChangeOp& op, OpId id, const ObjId& obj,
                     const std::string* prop, OpId elem);
  void UndoTo(size_t mark);
  Slot* FindSlot(const ObjId& obj, const std::string& prop, const OpId& elem);

  // Adds `change` (already applied to the op set, or about to be) to the
  // graph. Fails, changing nothing, on a sequence number out of order.
  Status CheckSeq(const StoredChange& sc, uint32_t actor) const;
  void AddToGraph(const StoredChange& sc, uint32_t actor);
  // Applies one causally ready change. Its ops are rewritten on the way
  // (actor indices made the document's): sc is the caller's to drop after.
  Status ApplyOne(StoredChange& sc);
  // ApplyChanges, except that the first `ordered` changes of the batch are
  // applied in their order, when the queue is empty.
  Status Apply(std::vector<StoredChange> batch, size_t ordered);
  // Loads a document chunk into an empty document (document_load.cc): its
  // changes into the graph in row order, its ops straight into the op set.
  // On failure the document is left part-built: the caller must Reset it.
  Status LoadDocumentChunk(const Chunk& chunk);
  class OpSetBuilder;
  // Back to an empty document.
  void Reset();

  uint32_t InternActor(const ActorId& a);
  std::optional<uint32_t> FindActor(const ActorId& a) const;
  OpOrder order() const { return OpOrder{&rank_}; }
  const Object* FindObject(const ObjId& obj) const;
  std::optional<Value> ValueOf(const Op& op) const;
  // The op whose value shows at a slot (the greatest visible one), now or at
  // a clock; with its counter total at that clock in *counter_total.
  const Op* WinnerAt(const Slot& slot, const Clock* at, int64_t* counter_total) const;
  std::optional<Value> ValueAt(const Slot& slot, const Clock* at) const;

  // Op set.
  std::unordered_map<ObjId, Object, OpIdHash> objects_;
  std::unordered_map<OpId, std::pair<std::optional<std::string>, bool>, OpIdHash> marks_;

  // Actors, in the order first seen, and their rank in byte order.
  std::vector<ActorId> actors_;
  struct ActorHash {  // looks actors up by their bytes, without a string copy
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, uint32_t, ActorHash, std::equal_to<>> actor_index_;
  std::vector<uint32_t> rank_;
  std::vector<uint32_t> by_rank_;  // actor indices in byte order: rank_'s inverse
  // Sets rank_ from by_rank_, from position `from` on.
  void Rerank(size_t from);

  // Change graph.
  ChangeLog changes_{&actors_};
  std::vector<std::vector<uint32_t>> by_actor_;  // change indices, by seq
  std::vector<ChangeHash> heads_;
  uint32_t max_op_ = 0;
  std::vector<StoredChange> queue_;
  DropHandler on_dropped_;

  std::vector<Undo> undo_;
  bool in_transaction_ = false;
  std::vector<uint32_t> actor_table_;  // ApplyOne's: a change's actors as document actors
};

}  // namespace etherply::automerge
