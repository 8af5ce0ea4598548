// JSON parsing with correctly rounded numbers.
//
// Boost.JSON 1.81 may round a decimal number to a double one unit in the
// last place off (precise parsing arrived in 1.83). A client's 0.1 must be
// stored as the double nearest 0.1, so this parser takes Boost.JSON's
// grammar and re-reads every non-integer number's text with std::from_chars.
#pragma once

#include <boost/json/value.hpp>
#include <string_view>

#include "base/status.h"

namespace etherply {

// Parses one JSON text (strict: no comments, no trailing commas, UTF-8), at
// most max_depth arrays and objects deep. Otherwise kInvalidArgument, whose
// message completes a sentence about the text: "is not valid JSON (<the
// parser's reason>)", "nests deeper than <max_depth> levels", "holds a
// number beyond the range of a double" (JSON allows 1e400; a double, and so
// Automerge, cannot hold it; numbers too small for one round to zero), or
// "holds a number whose exponent is too long to read" (beyond 32 bits), or
// "has an object with a duplicate key" (which of the two would be meant is
// a guess: RFC 7493 forbids them, as the JWT parser does), or "holds a lone
// surrogate escape ..." (a \u escape of half a UTF-16 pair, which no
// UTF-8 string can hold).
Result<boost::json::value> ParseJson(std::string_view text, size_t max_depth = 64);

}  // namespace etherply
