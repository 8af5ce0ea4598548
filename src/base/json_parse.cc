#include "base/json_parse.h"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>
#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace etherply {

namespace {

namespace json = boost::json;

// A basic_parser handler that builds a value with value_stack, as
// json::parser does, except for doubles.
class Handler {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  json::value_stack st;
  std::string number;
  bool too_large = false;  // a number beyond a double's range
  // Members the text names, over all objects; whether an object named two
  // or more (only such can repeat a key).
  size_t members = 0;
  bool multi_member = false;

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t n, json::error_code&) {
    st.push_array(n);
    return true;
  }
  bool on_object_begin(json::error_code&) { return true; }
  bool on_object_end(std::size_t n, json::error_code&) {
    members += n;
    multi_member |= n >= 2;
    st.push_object(n);
    return true;
  }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    st.push_string(s);
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    st.push_key(s);
    return true;
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    number.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, json::string_view, json::error_code&) {
    number.clear();
    st.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, json::string_view, json::error_code&) {
    number.clear();
    st.push_uint64(u);
    return true;
  }
  bool on_double(double d, json::string_view s, json::error_code& ec) {
    number.append(s.data(), s.size());
    double exact = d;
    auto r = std::from_chars(number.data(), number.data() + number.size(), exact);
    number.clear();
    if (r.ec == std::errc::result_out_of_range) {
      // from_chars leaves `exact` alone: too large is refused; too small
      // keeps Boost's value, zero or next to it.
      if (std::fabs(d) >= 1.0) {
        too_large = true;
        ec = json::error::exponent_overflow;
        return false;
      }
      exact = d;
    }
    st.push_double(exact);
    return true;
  }
  bool on_bool(bool b, json::error_code&) {
    st.push_bool(b);
    return true;
  }
  bool on_null(json::error_code&) {
    st.push_null();
    return true;
  }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

// The members of every object in `v`. Boost.JSON keeps the last of a
// repeated key, so a text with one holds fewer than it names.
size_t CountMembers(const json::value& v) {
  size_t n = 0;
  if (const auto* a = v.if_array())
    for (const auto& e : *a) n += CountMembers(e);
  if (const auto* o = v.if_object()) {
    n += o->size();
    for (const auto& m : *o) n += CountMembers(m.value());
  }
  return n;
}

// Whether text, a string's start, ends with the escape \uD800 to \uDBFF,
// the first half of a UTF-16 surrogate pair, or with one and the backslash
// of the next escape: Boost.JSON stops on what follows a first half that
// lacks its second with a plain "syntax error".
bool EndsWithHighSurrogateEscape(std::string_view text) {
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  if (text.size() >= 2 && text.back() == '\\' && hex(text[text.size() - 2])) text.remove_suffix(1);
  if (text.size() < 6) return false;
  std::string_view e = text.substr(text.size() - 6);
  if (!(e[0] == '\\' && e[1] == 'u' && (e[2] == 'd' || e[2] == 'D') &&
        std::string_view("89abAB").find(e[3]) != std::string_view::npos && hex(e[4]) && hex(e[5])))
    return false;
  // The backslash starts an escape only after an even run of them ("\\\\"
  // is one backslash, escaped).
  size_t run = 0;
  for (size_t i = text.size() - 6; i > 0 && text[i - 1] == '\\'; --i) ++run;
  return run % 2 == 0;
}

}  // namespace

Result<boost::json::value> ParseJson(std::string_view text, size_t max_depth) {
  json::parse_options opts;
  opts.max_depth = max_depth;
  json::basic_parser<Handler> p(opts);
  p.handler().st.reset();
  json::error_code ec;
  std::size_t n = p.write_some(false, text.data(), text.size(), ec);
  if (!ec && n < text.size()) ec = json::error::extra_data;
  if (ec == json::error::too_deep)
    return Status::InvalidArgument("nests deeper than " + std::to_string(max_depth) + " levels");
  if (ec == json::error::exponent_overflow)  // ours, or Boost's for an exponent past its int
    return Status::InvalidArgument(p.handler().too_large
                                       ? "holds a number beyond the range of a double"
                                       : "holds a number whose exponent is too long to read");
  if (ec == json::error::illegal_leading_surrogate ||
      ec == json::error::illegal_trailing_surrogate ||
      (ec == json::error::syntax && EndsWithHighSurrogateEscape(text.substr(0, n))))
    return Status::InvalidArgument(
        "holds a lone surrogate escape (\\ud800 to \\udfff without its pair): strings must "
        "be Unicode text");
  if (ec) return Status::InvalidArgument("is not valid JSON (" + ec.message() + ")");
  json::value v = p.handler().st.release();
  if (p.handler().multi_member && CountMembers(v) != p.handler().members)
    return Status::InvalidArgument("has an object with a duplicate key");
  return v;
}

}  // namespace etherply
