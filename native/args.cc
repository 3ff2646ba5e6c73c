// Strict conversions of JavaScript arguments; see args.h.
#include "args.h"
#include "holder.h"
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace byol {

static std::string formatNumber(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char text[32];
  // As JavaScript prints numbers: integers below 1e21 in full, others the shorter of %.15g and
  // %.17g that reads back as d.
  if (d == std::trunc(d) && std::fabs(d) < 1e21) {
    std::snprintf(text, sizeof text, "%.0f", d);
    return text;
  }
  std::snprintf(text, sizeof text, "%.15g", d);
  if (std::strtod(text, nullptr) != d) std::snprintf(text, sizeof text, "%.17g", d);
  return text;
}

static std::string bigintText(const Napi::BigInt& b) {
  bool lossless = false;
  int64_t i = b.Int64Value(&lossless);
  if (lossless) return std::to_string(i) + "n";
  uint64_t u = b.Uint64Value(&lossless);
  if (lossless) return std::to_string(u) + "n";
  return "a BigInt outside the 64-bit range";
}

std::string describeValue(const Napi::Value& v) noexcept {
  try {
    if (v.IsUndefined()) return "undefined";
    if (v.IsNull()) return "null";
    if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? "true" : "false";
    if (v.IsNumber()) return formatNumber(v.As<Napi::Number>().DoubleValue());
    if (v.IsBigInt()) return bigintText(v.As<Napi::BigInt>());
    if (v.IsString()) {
      std::string s = v.As<Napi::String>().Utf8Value();
      return s.size() <= 40 ? "'" + s + "'" : "'" + s.substr(0, 40) + "...'";
    }
    if (v.IsExternal()) {
      auto e = v.As<Napi::External<void>>();
      if (e.CheckTypeTag(&kTensorTag)) return describe(e.As<Napi::External<TensorHolder>>().Data()->tensor);
      if (e.CheckTypeTag(&kGeneratorTag)) return "a Generator";
      return "a native handle of unknown type";
    }
    if (v.IsArray()) return "an array of length " + std::to_string(v.As<Napi::Array>().Length());
    if (v.IsTypedArray()) return "a typed array";
    if (v.IsFunction()) return "a function";
    if (v.IsSymbol()) return "a symbol";
    return "an object";
  } catch (...) {
    return "an unreadable value";
  }
}

int64_t toInt64(const Napi::Value& v, const std::string& what, int64_t min, int64_t max) {
  Napi::Env env = v.Env();
  auto outOfRange = [&]() {
    return Napi::RangeError::New(env, what + " must be an integer from " + std::to_string(min) + " to " + std::to_string(max) +
                                          ", got " + describeValue(v));
  };
  int64_t result;
  if (v.IsBigInt()) {
    bool lossless = false;
    result = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (!lossless) throw outOfRange();
  } else if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d != std::trunc(d)) throw Napi::RangeError::New(env, what + " must be an integer, got " + describeValue(v));
    // 2^63 is exactly representable; anything at or above it would overflow the cast.
    if (d < -9223372036854775808.0 || d >= 9223372036854775808.0) throw outOfRange();
    result = static_cast<int64_t>(d);
  } else {
    throw Napi::TypeError::New(env, what + " must be an integer, got " + describeValue(v));
  }
  if (result < min || result > max) throw outOfRange();
  return result;
}

uint64_t toSeed(const Napi::Value& v, const std::string& what) {
  Napi::Env env = v.Env();
  auto outOfRange = [&]() {
    return Napi::RangeError::New(env, what + " must be an integer from -2^63 to 2^64 - 1, got " + describeValue(v));
  };
  if (v.IsBigInt()) {
    bool lossless = false;
    uint64_t u = v.As<Napi::BigInt>().Uint64Value(&lossless);
    if (lossless) return u;
    int64_t i = v.As<Napi::BigInt>().Int64Value(&lossless);
    if (lossless) return static_cast<uint64_t>(i);
    throw outOfRange();
  }
  if (v.IsNumber()) {
    double d = v.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d != std::trunc(d)) throw Napi::RangeError::New(env, what + " must be an integer, got " + describeValue(v));
    if (d < -9223372036854775808.0 || d >= 18446744073709551616.0) throw outOfRange();
    return d < 0 ? static_cast<uint64_t>(static_cast<int64_t>(d)) : static_cast<uint64_t>(d);
  }
  throw Napi::TypeError::New(env, what + " must be an integer, got " + describeValue(v));
}

double toDouble(const Napi::Value& v, const std::string& what) {
  if (!v.IsNumber()) throw Napi::TypeError::New(v.Env(), what + " must be a number, got " + describeValue(v));
  return v.As<Napi::Number>().DoubleValue();
}

bool toBool(const Napi::Value& v, const std::string& what) {
  if (!v.IsBoolean()) throw Napi::TypeError::New(v.Env(), what + " must be a boolean, got " + describeValue(v));
  return v.As<Napi::Boolean>().Value();
}

std::string toString(const Napi::Value& v, const std::string& what) {
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), what + " must be a string, got " + describeValue(v));
  return v.As<Napi::String>().Utf8Value();
}

Napi::Array toArray(const Napi::Value& v, const std::string& what) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), what + " must be an array, got " + describeValue(v));
  return v.As<Napi::Array>();
}

}  // namespace byol
