#include "server/history.h"

#include <algorithm>
#include <set>

#include "automerge/json.h"
#include "base/coding.h"
#include "base/hex.h"
#include "server/protocol.h"

namespace etherply::server {

using automerge::Action;
using automerge::ChangeHash;
using automerge::Document;
using automerge::StoredChange;

std::optional<std::string> AuthorOf(const Document& doc, const StoredChange& change) {
  std::optional<StoredChange> first = doc.ChangeOfActor(change.change.actor, 1);
  if (!first) return std::nullopt;
  Reader r(first->change.extra);
  auto tag = r.Byte();
  if (!tag.ok() || *tag != 0x01) return std::nullopt;
  auto bytes = r.LengthPrefixed();
  if (!bytes.ok()) return std::nullopt;
  return std::string(AsChars(*bytes));
}

namespace {

const char* ActionName(Action a) {
  switch (a) {
    case Action::kMakeMap: return "makeMap";
    case Action::kSet: return "set";
    case Action::kMakeList: return "makeList";
    case Action::kDelete: return "del";
    case Action::kMakeText: return "makeText";
    case Action::kIncrement: return "inc";
    case Action::kMakeTable: return "makeTable";
    case Action::kMark: return "mark";
  }
  return "unknown";
}

// One op as {"action":..,"path":[..],"key":..,"value":..}.
void AppendOp(std::string& out, const Document& doc, const automerge::Change& c,
              const automerge::ChangeOp& op) {
  out += "{\"action\":\"";
  out += ActionName(op.action);
  out += "\",\"path\":";
  auto obj = doc.FindObject(c.ActorAt(op.obj.actor), op.obj.counter);
  out += obj ? doc.PathJson(*obj) : "null";
  out += ",\"key\":";
  if (op.key.is_map()) {
    automerge::AppendJsonString(out, *op.key.prop);
  } else if (op.key.elem.counter == 0) {
    out += "\"_head\"";
  } else {
    automerge::AppendJsonString(
        out, std::to_string(op.key.elem.counter) + "@" + ToHex(c.ActorAt(op.key.elem.actor)));
  }
  if (!op.key.is_map()) out += op.insert ? ",\"insert\":true" : ",\"insert\":false";
  switch (op.action) {
    case Action::kSet:
    case Action::kIncrement:
    case Action::kMark:
      out += ",\"value\":";
      automerge::AppendJsonScalar(out, op.value);
      break;
    case Action::kMakeMap:
    case Action::kMakeTable: out += ",\"value\":{}"; break;
    case Action::kMakeList: out += ",\"value\":[]"; break;
    case Action::kMakeText: out += ",\"value\":\"\""; break;
    case Action::kDelete: break;
  }
  out += '}';
}

void AppendHashes(std::string& out, const std::vector<ChangeHash>& hashes) {
  out += '[';
  for (size_t i = 0; i < hashes.size(); ++i) {
    if (i) out += ',';
    out += '"' + automerge::HashToHex(hashes[i]) + '"';
  }
  out += ']';
}

void AppendChange(std::string& out, const Document& doc, const StoredChange& sc) {
  auto decoded = automerge::ReadChange(sc);
  const automerge::Change& c = decoded.ok() ? *decoded : sc.change;
  out += "{\"hash\":\"" + automerge::HashToHex(sc.hash) + "\",\"actor\":\"" + ToHex(c.actor) +
         "\",\"seq\":" + std::to_string(c.seq) + ",\"deps\":";
  AppendHashes(out, c.deps);
  out += ",\"time\":" + std::to_string(c.time) + ",\"author\":";
  if (auto a = AuthorOf(doc, sc)) {
    automerge::AppendJsonString(out, *a);
  } else {
    out += "null";
  }
  out += ",\"message\":";
  if (c.message.empty()) {
    out += "null";
  } else {
    automerge::AppendJsonString(out, c.message);
  }
  out += ",\"ops\":[";
  const size_t ops_start = out.size();
  size_t shown = 0;
  for (; shown < c.ops.size() && out.size() - ops_start < kMaxChangeOpsBytes; ++shown) {
    if (shown) out += ',';
    AppendOp(out, doc, c, c.ops[shown]);
  }
  out += ']';
  if (shown < c.ops.size()) out += ",\"omitted_ops\":" + std::to_string(c.ops.size() - shown);
  out += '}';
}

}  // namespace

std::set<std::string> RootKeysTouched(const Document& doc, const StoredChange& sc) {
  std::set<std::string> keys;
  auto decoded = automerge::ReadChange(sc);
  if (!decoded.ok()) return keys;
  const automerge::Change& c = *decoded;
  for (const automerge::ChangeOp& op : c.ops) {
    if (op.obj.counter == 0) {
      if (op.key.is_map()) keys.insert(*op.key.prop);
    } else if (auto obj = doc.FindObject(c.ActorAt(op.obj.actor), op.obj.counter)) {
      if (auto key = doc.RootKeyOf(*obj)) keys.insert(*key);
    }
  }
  return keys;
}

Result<std::string> HistoryPage(const Document& doc, size_t limit,
                                const std::optional<std::string>& cursor) {
  const auto& changes = doc.changes();
  size_t end = changes.size();  // one past the newest change to list
  if (cursor) {
    auto h = automerge::HashFromHex(*cursor);
    if (!h.ok()) return Status::InvalidArgument("bad cursor");
    auto idx = doc.IndexOf(*h);
    if (!idx) return Status::InvalidArgument("the cursor names no change of this workspace");
    end = *idx;
  }
  std::string out = "{\"changes\":[";
  size_t begin = end > limit ? end - limit : 0;
  for (size_t i = end; i > begin; --i) {
    if (out.size() >= kMaxPageBytes) {  // full: the page ends at change i
      begin = i;
      break;
    }
    if (i != end) out += ',';
    AppendChange(out, doc, changes[i - 1]);
  }
  out += "],\"next\":";
  if (begin > 0) {
    out += '"' + automerge::HashToHex(changes.hash(begin)) + '"';
  } else {
    out += "null";
  }
  return out + "}";
}

Result<std::string> StateAt(const Document& doc, const std::vector<ChangeHash>& heads) {
  auto clock = doc.ClockAt(heads);
  if (!clock.ok()) return clock.status();
  std::string out = "{\"data\":" + doc.ToJson(&*clock) + ",\"heads\":";
  std::vector<ChangeHash> sorted = heads;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  AppendHashes(out, sorted);
  return out + "}";
}

namespace {

// An edit for `key` if its value at `then` is not the Same as now.
void AddEditIfChanged(const Document& doc, const std::string& key, const automerge::Clock* then,
                      EditPlan& plan) {
  std::optional<automerge::ValueTree> value = doc.RootValueTree(key, then);
  std::optional<automerge::ValueTree> now = doc.RootValueTree(key);
  if (value.has_value() == now.has_value() && (!value || value->Same(*now))) return;
  plan.edits.push_back({key, std::move(value), doc.RootValueJson(key, then)});
}

Status FillObject(automerge::Transaction& tx, const automerge::ObjId& obj,
                  const automerge::ValueTree& t);

// Puts `t` at `key` of map `obj` (a new object for an object). kAlways
// records a scalar even where the key shows one the reference takes for
// equal (0 over -0).
Status PutTree(automerge::Transaction& tx, const automerge::ObjId& obj, std::string_view key,
               const automerge::ValueTree& t,
               automerge::PutMode mode = automerge::PutMode::kAsReference) {
  if (!t.obj_type) return tx.Put(obj, key, t.scalar, mode);
  auto child = tx.PutObject(obj, key, *t.obj_type);
  if (!child.ok()) return child.status();
  return FillObject(tx, *child, t);
}

// Writes t's contents into `obj`, new and empty, of t's type.
Status FillObject(automerge::Transaction& tx, const automerge::ObjId& obj,
                  const automerge::ValueTree& t) {
  switch (*t.obj_type) {
    case automerge::ObjType::kMap:
    case automerge::ObjType::kTable:
      for (const auto& [k, v] : t.fields)
        if (Status s = PutTree(tx, obj, k, v); !s.ok()) return s;
      return Status::Ok();
    case automerge::ObjType::kList:
      for (size_t i = 0; i < t.items.size(); ++i) {
        const automerge::ValueTree& item = t.items[i];
        if (!item.obj_type) {
          if (Status s = tx.Insert(obj, i, item.scalar); !s.ok()) return s;
          continue;
        }
        auto child = tx.InsertObject(obj, i, *item.obj_type);
        if (!child.ok()) return child.status();
        if (Status s = FillObject(tx, *child, item); !s.ok()) return s;
      }
      return Status::Ok();
    case automerge::ObjType::kText:
      return tx.SpliceText(obj, 0, 0, t.text);
  }
  return Status::Ok();
}

}  // namespace

Result<EditPlan> PlanUndo(const Document& doc, const ChangeHash& change) {
  auto idx = doc.IndexOf(change);
  if (!idx) return Status::NotFound("no change " + automerge::HashToHex(change) + " in this workspace");
  const StoredChange& target = doc.changes()[*idx];
  auto before = doc.ClockAt(target.change.deps);
  if (!before.ok()) return before.status();
  std::vector<bool> ancestors = doc.Ancestors({change});
  std::set<std::string> later;
  for (size_t i = 0; i < doc.changes().size(); ++i)
    if (!ancestors[i]) {
      auto keys = RootKeysTouched(doc, doc.changes()[i]);
      later.insert(keys.begin(), keys.end());
    }
  EditPlan plan;
  for (const std::string& key : RootKeysTouched(doc, target)) {
    if (later.count(key)) {
      plan.skipped.push_back(key);
      continue;
    }
    AddEditIfChanged(doc, key, &*before, plan);
  }
  return plan;
}

Result<EditPlan> PlanRestore(const Document& doc, const std::vector<ChangeHash>& heads) {
  auto clock = doc.ClockAt(heads);
  if (!clock.ok()) return clock.status();
  EditPlan plan;
  std::vector<std::string> target = doc.RootKeys(&*clock);
  std::set<std::string> target_set(target.begin(), target.end());
  for (const std::string& key : doc.RootKeys())
    if (!target_set.count(key)) plan.edits.push_back({key, std::nullopt});
  for (const std::string& key : target) AddEditIfChanged(doc, key, &*clock, plan);
  return plan;
}

Result<std::vector<std::string>> ApplyPlan(automerge::Transaction& tx, const EditPlan& plan,
                                           int64_t timestamp_micros) {
  std::vector<std::string> messages;
  for (const KeyEdit& e : plan.edits) {
    if (e.value) {
      // The plan found it differs: recorded whatever the key shows.
      if (Status s = PutTree(tx, automerge::kRoot, e.key, *e.value, automerge::PutMode::kAlways);
          !s.ok())
        return s;
    } else {
      if (Status s = tx.Delete(automerge::kRoot, e.key); !s.ok()) return s;
    }
    messages.push_back(KeyMessage(e.key, e.value_json, timestamp_micros));
  }
  return messages;
}

}  // namespace etherply::server
