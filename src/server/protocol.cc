#include "server/protocol.h"

#include <boost/json.hpp>
#include <cmath>

#include "automerge/json.h"
#include "base/json_parse.h"

namespace etherply::server {

namespace json = boost::json;
using automerge::ObjType;
using automerge::ScalarValue;

Result<OpMessage> ParseClientMessage(std::string_view text) {
  auto parsed = ParseJson(text, kMaxValueDepth + 2);
  if (!parsed.ok()) return Status::InvalidArgument("message " + parsed.status().message());
  json::value v = std::move(*parsed);
  const json::object* obj = v.if_object();
  if (!obj) return Status::InvalidArgument("message is not a JSON object");
  const json::value* type = obj->if_contains("type");
  if (!type) return Status::InvalidArgument("message has no \"type\"");
  if (!type->is_string()) return Status::InvalidArgument("message \"type\" must be a string");
  if (type->as_string() != "op")
    return Status::InvalidArgument("unknown message type \"" + std::string(type->as_string()) + "\"");
  const json::value* payload = obj->if_contains("payload");
  if (!payload || !payload->is_object()) return Status::InvalidArgument("op has no \"payload\" object");
  const json::object& p = payload->as_object();
  const json::value* key = p.if_contains("key");
  if (!key || !key->is_string() || key->as_string().empty())
    return Status::InvalidArgument("op payload needs a non-empty string \"key\"");
  const json::value* value = p.if_contains("value");
  if (!value) return Status::InvalidArgument("op payload needs a \"value\"");
  OpMessage op{std::string(key->as_string()), *value, std::nullopt};
  if (const json::value* ts = p.if_contains("timestamp"); ts && !ts->is_null()) {
    if (!ts->is_int64())
      return Status::InvalidArgument("\"timestamp\" must be an integer of Unix microseconds");
    op.timestamp = ts->as_int64();
  }
  return op;
}

namespace {

Result<ScalarValue> Scalar(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return ScalarValue(std::monostate{});
    case json::kind::bool_: return ScalarValue(v.get_bool());
    case json::kind::int64: return ScalarValue(v.get_int64());
    case json::kind::uint64: return ScalarValue(automerge::Uint{v.get_uint64()});  // above int64
    case json::kind::double_: return ScalarValue(v.get_double());
    case json::kind::string: return ScalarValue(std::string(v.get_string()));
    default: return Status::InvalidArgument("not a scalar");
  }
}

Status FillList(automerge::Transaction& tx, const automerge::ObjId& list, const json::array& a);

// `map` is new: how a put over a value is recorded does not matter.
Status FillMap(automerge::Transaction& tx, const automerge::ObjId& map, const json::object& o) {
  for (const auto& kv : o)
    if (Status s = PutJson(tx, map, kv.key(), kv.value(), automerge::PutMode::kAsReference);
        !s.ok())
      return s;
  return Status::Ok();
}

Status FillList(automerge::Transaction& tx, const automerge::ObjId& list, const json::array& a) {
  for (size_t i = 0; i < a.size(); ++i) {
    const json::value& v = a[i];
    if (v.is_object() || v.is_array()) {
      auto child = tx.InsertObject(list, i, v.is_object() ? ObjType::kMap : ObjType::kList);
      if (!child.ok()) return child.status();
      Status s = v.is_object() ? FillMap(tx, *child, v.get_object()) : FillList(tx, *child, v.get_array());
      if (!s.ok()) return s;
    } else {
      if (Status s = tx.Insert(list, i, *Scalar(v)); !s.ok()) return s;
    }
  }
  return Status::Ok();
}

}  // namespace

Status PutJson(automerge::Transaction& tx, const automerge::ObjId& obj, std::string_view key,
               const json::value& value, automerge::PutMode mode) {
  if (value.is_object()) {
    auto child = tx.PutObject(obj, key, ObjType::kMap);
    if (!child.ok()) return child.status();
    return FillMap(tx, *child, value.get_object());
  }
  if (value.is_array()) {
    auto child = tx.PutObject(obj, key, ObjType::kList);
    if (!child.ok()) return child.status();
    return FillList(tx, *child, value.get_array());
  }
  return tx.Put(obj, key, *Scalar(value), mode);
}

std::string InitMessage(const automerge::Document& doc) {
  std::string out = "{\"type\":\"init\",\"data\":";
  out += doc.ToJson();
  out += ",\"heads\":[";
  bool first = true;
  for (const auto& h : doc.heads()) {
    if (!first) out += ',';
    first = false;
    out += '"' + automerge::HashToHex(h) + '"';
  }
  out += "]}";
  return out;
}

void AppendJson(std::string& out, const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: out += "null"; break;
    case json::kind::bool_: out += v.get_bool() ? "true" : "false"; break;
    case json::kind::int64: out += std::to_string(v.get_int64()); break;
    case json::kind::uint64: out += std::to_string(v.get_uint64()); break;
    case json::kind::double_: {
      double d = v.get_double();
      out += std::isfinite(d) ? automerge::FormatJsNumber(d) : "null";
      break;
    }
    case json::kind::string: automerge::AppendJsonString(out, v.get_string()); break;
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const json::value& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        AppendJson(out, e);
      }
      out += ']';
      break;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        automerge::AppendJsonString(out, kv.key());
        out += ':';
        AppendJson(out, kv.value());
      }
      out += '}';
      break;
    }
  }
}

std::string OpBroadcast(const OpMessage& op, int64_t timestamp) {
  std::string out = "{\"type\":\"op\",\"payload\":{\"key\":";
  automerge::AppendJsonString(out, op.key);
  out += ",\"value\":";
  AppendJson(out, op.value);
  out += ",\"timestamp\":" + std::to_string(timestamp) + "}}";
  return out;
}

std::string KeyMessage(std::string_view key, const std::optional<std::string>& value_json,
                       int64_t timestamp) {
  std::string out = "{\"type\":\"op\",\"payload\":{\"key\":";
  automerge::AppendJsonString(out, key);
  out += value_json ? ",\"value\":" + *value_json : ",\"value\":null,\"deleted\":true";
  out += ",\"timestamp\":" + std::to_string(timestamp) + "}}";
  return out;
}

std::shared_ptr<const std::string> ErrorMessage(int code, std::string_view message) {
  json::object msg;
  msg["type"] = "error";
  msg["code"] = code;
  msg["message"] = message;
  return std::make_shared<const std::string>(json::serialize(msg));
}

}  // namespace etherply::server
