// The document as JSON, as the reference's JSON.stringify(A.toJS(doc)) shows it.
//
// Mapping:
//   map, table      object; keys in JavaScript's order: array-index keys
//                   ("0".."4294967294") ascending first, then the rest in the
//                   document's order (UTF-8 bytes)
//   list            array          text       string (marks left out)
//   null, boolean   themselves     string     string, escaped as JSON.stringify
//   int, uint       the exact integer. JavaScript rounds beyond 2^53; we
//                   never lose digits (a documented difference)
//   f64             JavaScript's shortest form (1e+21, 1.5e-7); NaN and
//                   infinities as null, as JSON.stringify does
//   counter         its current value (a number)
//   timestamp       ISO 8601 in UTC with milliseconds, as Date.toJSON; null
//                   outside JavaScript's date range (±8.64e15 ms)
//   bytes           base64 (standard alphabet, padded): JSON has no bytes;
//                   the reference would print an object of indices
//   unknown types   null
#pragma once

#include <string>

#include "automerge/types.h"

namespace etherply::automerge {

// Appends the JSON form of one scalar value.
void AppendJsonScalar(std::string& out, const ScalarValue& v);
// Appends a JSON string literal.
void AppendJsonString(std::string& out, std::string_view s);
// JavaScript's Number.prototype.toString for a finite double.
std::string FormatJsNumber(double d);
// Date.prototype.toISOString, or nullopt outside the date range.
std::optional<std::string> FormatIsoTime(int64_t millis);
std::string Base64(ByteView b);

}  // namespace etherply::automerge
