// etherply_script: replays a differential-test script on the C++ Automerge
// and prints what it made, for differential_test.mjs to compare with the
// reference. The script format is described in tests/interop/README.md.
//
// Output, one JSON object per line:
//   {"step":i,"hash":"<hex>"|null,"change":"<hex>"|null}   for each change step
//   {"peer":p,"json":<document JSON>,"heads":["<hex>",...]}  for each peer, at the end
// Any failure: a message on stderr and exit status 1.
#include <boost/json.hpp>
#include <charconv>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "automerge/document.h"
#include "automerge/transaction.h"
#include "base/hex.h"
#include "base/json_parse.h"

namespace json = boost::json;
using namespace etherply;
using namespace etherply::automerge;

namespace {

[[noreturn]] void Fail(const std::string& msg) {
  std::cerr << "etherply_script: " << msg << "\n";
  std::exit(1);
}

void Check(const Status& s, const std::string& what) {
  if (!s.ok()) Fail(what + ": " + s.ToString());
}

template <typename T>
T ParseInt(const json::value& v) {
  std::string_view s = v.as_string();
  T out{};
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) Fail("bad integer " + std::string(s));
  return out;
}

ScalarValue ParseValue(const json::value& jv) {
  const json::object& o = jv.as_object();
  std::string_view type = o.at("type").as_string();
  if (type == "null") return std::monostate{};
  if (type == "bool") return o.at("value").as_bool();
  if (type == "int") return ParseInt<int64_t>(o.at("value"));
  if (type == "uint") return Uint{ParseInt<uint64_t>(o.at("value"))};
  if (type == "f64") return o.at("value").to_number<double>();
  if (type == "str") return std::string(o.at("value").as_string());
  if (type == "bytes") {
    auto b = FromHex(o.at("value").as_string());
    if (!b.ok()) Fail("bad bytes value");
    return *b;
  }
  if (type == "counter") return Counter{ParseInt<int64_t>(o.at("value"))};
  if (type == "timestamp") return Timestamp{ParseInt<int64_t>(o.at("value"))};
  Fail("unknown value type " + std::string(type));
}

ObjType ParseObjType(const json::value& v) {
  std::string_view t = v.as_string();
  if (t == "map") return ObjType::kMap;
  if (t == "list") return ObjType::kList;
  if (t == "text") return ObjType::kText;
  Fail("unknown object type " + std::string(t));
}

void RunOp(Document& doc, Transaction& tx, const json::object& op) {
  std::string_view kind = op.at("op").as_string();
  auto obj = doc.ImportObjId(op.at("obj").as_string());
  Check(obj.status(), "object " + std::string(op.at("obj").as_string()));
  const json::value* key = op.if_contains("key");
  auto index = [&] { return static_cast<size_t>(op.at("index").to_number<int64_t>()); };
  std::string what = json::serialize(op);
  if (kind == "put") {
    Check(tx.Put(*obj, key->as_string(), ParseValue(op.at("value"))), what);
  } else if (kind == "put_object") {
    Check(tx.PutObject(*obj, key->as_string(), ParseObjType(op.at("type"))).status(), what);
  } else if (kind == "insert") {
    Check(tx.Insert(*obj, index(), ParseValue(op.at("value"))), what);
  } else if (kind == "insert_object") {
    Check(tx.InsertObject(*obj, index(), ParseObjType(op.at("type"))).status(), what);
  } else if (kind == "set") {
    Check(tx.Set(*obj, index(), ParseValue(op.at("value"))), what);
  } else if (kind == "delete") {
    Check(key ? tx.Delete(*obj, key->as_string()) : tx.Delete(*obj, index()), what);
  } else if (kind == "splice") {
    size_t del = static_cast<size_t>(op.at("delete").to_number<int64_t>());
    if (const json::value* text = op.if_contains("text")) {
      Check(tx.SpliceText(*obj, index(), del, text->as_string()), what);
    } else {
      std::vector<ScalarValue> values;
      for (const json::value& v : op.at("values").as_array()) values.push_back(ParseValue(v));
      Check(tx.Splice(*obj, index(), del, values), what);
    }
  } else if (kind == "increment") {
    int64_t by = op.at("by").to_number<int64_t>();
    Check(key ? tx.Increment(*obj, key->as_string(), by) : tx.Increment(*obj, index(), by), what);
  } else {
    Fail("unknown op " + std::string(kind));
  }
}

}  // namespace

int main() {
  std::string input((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  auto parsed = ParseJson(input, 256);
  if (!parsed.ok()) Fail("script: " + parsed.status().message());
  json::value script = std::move(*parsed);
  std::vector<std::unique_ptr<Document>> docs;
  std::vector<ActorId> actors;
  for (const json::value& p : script.at("peers").as_array()) {
    auto a = FromHex(p.at("actor").as_string());
    if (!a.ok()) Fail("bad actor");
    actors.push_back(*a);
    docs.push_back(std::make_unique<Document>());
  }
  size_t step_no = 0;
  for (const json::value& sv : script.at("steps").as_array()) {
    const json::object& step = sv.as_object();
    std::string_view kind = step.at("step").as_string();
    if (kind == "change") {
      size_t p = static_cast<size_t>(step.at("peer").to_number<int64_t>());
      Document& doc = *docs.at(p);
      Transaction tx(doc, actors[p]);
      for (const json::value& op : step.at("ops").as_array()) RunOp(doc, tx, op.as_object());
      CommitOptions opts;
      opts.time = step.at("time").to_number<int64_t>();
      if (const json::value* m = step.if_contains("message"); m && m->is_string())
        opts.message = std::string(m->as_string());
      auto hash = tx.Commit(opts);
      Check(hash.status(), "commit of step " + std::to_string(step_no));
      json::object out{{"step", step_no}};
      if (*hash) {
        out["hash"] = HashToHex(**hash);
        out["change"] = ToHex(doc.GetChange(**hash)->bytes);
      } else {
        out["hash"] = nullptr;
        out["change"] = nullptr;
      }
      std::cout << json::serialize(out) << "\n";
    } else if (kind == "merge") {
      Document& into = *docs.at(static_cast<size_t>(step.at("into").to_number<int64_t>()));
      const Document& from = *docs.at(static_cast<size_t>(step.at("from").to_number<int64_t>()));
      std::vector<StoredChange> missing;
      for (const StoredChange& sc : from.changes())
        if (!into.GetChange(sc.hash)) missing.push_back(sc);
      Check(into.ApplyChanges(std::move(missing)), "merge at step " + std::to_string(step_no));
    } else {
      Fail("unknown step " + std::string(kind));
    }
    ++step_no;
  }
  for (size_t p = 0; p < docs.size(); ++p) {
    json::array heads;
    for (const ChangeHash& h : docs[p]->heads()) heads.emplace_back(HashToHex(h));
    std::cout << "{\"peer\":" << p << ",\"json\":" << docs[p]->ToJson()
              << ",\"heads\":" << json::serialize(heads) << "}\n";
  }
  return 0;
}
