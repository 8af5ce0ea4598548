// The history API's logic (doc/history_api.md), as pure functions of a
// document; the routes are in http_session.cc, the writes go through the
// workspace like any op.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "automerge/document.h"
#include "automerge/transaction.h"
#include "base/status.h"

namespace etherply::server {

// The author of a change: the author its actor's first change names (the
// extra bytes 01 uleb(len) bytes), if any.
std::optional<std::string> AuthorOf(const automerge::Document& doc,
                                    const automerge::StoredChange& change);

// The most bytes of ops one change shows in a page: an op names the whole
// path of its object, so one small change of a value nested under long keys
// could take gigabytes. The ops past it are counted ("omitted_ops"), not
// shown.
inline constexpr size_t kMaxChangeOpsBytes = 4 << 20;
// A page ends early (fewer than `limit` changes, `next` set as usual) once
// it holds this many bytes.
inline constexpr size_t kMaxPageBytes = 8 << 20;

// {"changes":[...],"next":"<cursor>"|null}: at most `limit` changes, newest
// first, starting after `cursor` (the hash of the last change of the
// previous page), and about kMaxPageBytes + kMaxChangeOpsBytes at most.
// kInvalidArgument for a cursor that names no change.
Result<std::string> HistoryPage(const automerge::Document& doc, size_t limit,
                                const std::optional<std::string>& cursor);

// {"data":{...},"heads":[...]}: the workspace as it was at `heads`.
// kNotFound naming an unknown head.
Result<std::string> StateAt(const automerge::Document& doc,
                            const std::vector<automerge::ChangeHash>& heads);

// What a new change must do to a root key: put a value again, as it was
// (its types kept: an f64 stays one, -0 stays -0), or delete the key.
struct KeyEdit {
  std::string key;
  std::optional<automerge::ValueTree> value;  // nullopt: delete the key
  std::optional<std::string> value_json;      // the value's JSON, for the op message
};

struct EditPlan {
  std::vector<KeyEdit> edits;
  std::vector<std::string> skipped;  // keys left alone (undo only)
};

// Undo of `change`: every root key it set goes back to its value just before
// it, except keys that a change not before it (later or concurrent) has set
// since: those are left alone and listed as skipped. A key that shows that
// value already (ValueTree::Same) needs no edit. kNotFound if the document
// lacks the change.
Result<EditPlan> PlanUndo(const automerge::Document& doc, const automerge::ChangeHash& change);

// Restore: the edits that make the root equal to its state at `heads`: keys
// whose value is not the Same are put again.
Result<EditPlan> PlanRestore(const automerge::Document& doc,
                             const std::vector<automerge::ChangeHash>& heads);

// Records the plan's edits in tx and returns the op messages that tell
// clients about them (a deleted key: "value":null,"deleted":true).
Result<std::vector<std::string>> ApplyPlan(automerge::Transaction& tx, const EditPlan& plan,
                                           int64_t timestamp_micros);

// The root keys a change touched: its ops on the root, and ops on objects
// below a root key, counted as that key.
std::set<std::string> RootKeysTouched(const automerge::Document& doc,
                                      const automerge::StoredChange& change);

}  // namespace etherply::server
