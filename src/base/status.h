// Status and Result<T>: the project's one error vocabulary.
//
// A Status is either OK or a code with a human-readable message. Functions that
// can fail return a Status, or a Result<T> holding either a value or a non-OK
// Status. Library errors (zlib, OpenSSL, RocksDB, Beast) are translated into a
// Status at the edge of the module that calls the library.
//
// Thread-safety: both types are values; distinct objects may be used from
// distinct threads, a shared one only for reading.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace etherply {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidArgument,  // the caller's input is not acceptable
    kCorruption,       // bytes are malformed
    kIncomplete,       // bytes end before the structure does
    kNotFound,
    kIoError,
    kUnsupported,
  };

  Status() = default;  // OK
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string_view msg) { return {Code::kInvalidArgument, msg}; }
  static Status Corruption(std::string_view msg) { return {Code::kCorruption, msg}; }
  static Status Incomplete(std::string_view msg) { return {Code::kIncomplete, msg}; }
  static Status NotFound(std::string_view msg) { return {Code::kNotFound, msg}; }
  static Status IoError(std::string_view msg) { return {Code::kIoError, msg}; }
  static Status Unsupported(std::string_view msg) { return {Code::kUnsupported, msg}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "corruption: <message>", or "ok".
  std::string ToString() const;

  // The same code with "<context>: " put before the message.
  Status WithContext(std::string_view context) const;

 private:
  Status(Code code, std::string_view msg) : code_(code), message_(msg) {}

  Code code_ = Code::kOk;
  std::string message_;
};

// Either a T or a non-OK Status.
template <typename T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).ok());
  }

  bool ok() const { return v_.index() == 0; }
  // The error; OK when the Result holds a value.
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(v_); }

  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace etherply
