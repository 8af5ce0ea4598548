// Local edits of a Document, committed as one change.
//
// A Transaction borrows its Document exclusively: each edit is applied at
// once (reads through the Document see it) and recorded; Commit turns the
// recorded ops into a change exactly as the reference would (deps = heads,
// seq, startOp = max op + 1, actor table, canonical encoding); Rollback, or
// destroying an uncommitted Transaction, takes every edit back.
//
// Edits follow the reference's rules: putting the value a key already holds
// (with no conflict) and deleting an absent map key record nothing, unless
// the put says PutMode::kAlways; a commit with nothing recorded makes no
// change. Indexes count visible elements; in
// text they count Unicode code points. Every edit fails with
// kInvalidArgument, changing nothing, on a missing object, an object of the
// wrong type, or an index out of range.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "automerge/document.h"

namespace etherply::automerge {

struct CommitOptions {
  std::string message;          // empty: none
  std::optional<int64_t> time;  // seconds since the epoch; default: now
  // Who the actor works for. As in the reference 3.5, an actor has one
  // author, written into the extra bytes of its first change (seq 1) only.
  std::optional<Bytes> author;
};

// How Put records a value the key already shows.
enum class PutMode {
  // As the reference: nothing if it shows alone; if it shows with
  // conflicting values, a delete of those.
  kAsReference,
  // A set over every visible op of the key, whatever they hold: the put is
  // a change of its own (the server's ops: one op, one change).
  kAlways,
};

class Transaction {
 public:
  // Fails (asserts) if another transaction is open on doc.
  Transaction(Document& doc, const ActorId& actor);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Status Put(const ObjId& obj, std::string_view key, ScalarValue value,
             PutMode mode = PutMode::kAsReference);
  Result<ObjId> PutObject(const ObjId& obj, std::string_view key, ObjType type);
  Status Delete(const ObjId& obj, std::string_view key);
  Status Increment(const ObjId& obj, std::string_view key, int64_t by);

  Status Insert(const ObjId& obj, size_t index, ScalarValue value);
  Result<ObjId> InsertObject(const ObjId& obj, size_t index, ObjType type);
  Status Set(const ObjId& obj, size_t index, ScalarValue value);
  Status Delete(const ObjId& obj, size_t index);
  Status Increment(const ObjId& obj, size_t index, int64_t by);
  // Inserts `values` at index, then deletes `del` elements after them.
  Status Splice(const ObjId& obj, size_t index, size_t del, const std::vector<ScalarValue>& values);
  // The same for text: one element per code point of `text` (valid UTF-8).
  Status SpliceText(const ObjId& obj, size_t index, size_t del, std::string_view text);

  size_t pending_ops() const { return ops_.size(); }

  // Makes the change and adds it to the document. Returns its hash, or
  // nullopt when nothing was recorded (no change is made, as the reference).
  Result<std::optional<ChangeHash>> Commit(const CommitOptions& options = {});
  void Rollback();

 private:
  struct Target;
  Result<Target> Resolve(const ObjId& obj, bool want_sequence) const;
  static const Slot* MapSlot(const Target& t, std::string_view key);
  std::vector<OpId> LiveIds(const Slot* slot) const;
  Result<Sequence::Pos> Element(const ObjId& obj, size_t index) const;
  Result<OpId> InsertKey(const ObjId& obj, size_t index) const;
  Result<OpId> Record(ChangeOp op);

  Document* doc_;
  uint32_t actor_;
  size_t undo_mark_;
  uint32_t start_op_;
  std::vector<ChangeOp> ops_;
  bool open_ = true;
};

}  // namespace etherply::automerge
