// Reading JavaScript arguments strictly. node-addon-api's own conversions truncate (1.5 → 1),
// wrap (2^31 → INT_MIN), zero NaN, drop BigInt's lossless flag and fail with "A number was
// expected" naming nothing; these refuse instead, with a TypeError (wrong kind of value) or a
// RangeError (right kind, unusable value) that names `what`, e.g. "setNumThreads: n".
#pragma once
#include <napi.h>
#include <cstdint>
#include <limits>
#include <string>

namespace byol {

// What a JS value is, for error messages: a number or short string as written, otherwise its
// kind. Runs no JavaScript (no toString, no getters), so it is safe inside a catch.
std::string describeValue(const Napi::Value& v) noexcept;

// An integer (a Number with no fraction, or a BigInt that fits) within [min, max].
int64_t toInt64(const Napi::Value& v, const std::string& what, int64_t min = std::numeric_limits<int64_t>::min(),
                int64_t max = std::numeric_limits<int64_t>::max());

// A seed: an integer in [-2^63, 2^64), negatives taken modulo 2^64 as torch.manual_seed does.
uint64_t toSeed(const Napi::Value& v, const std::string& what);

double toDouble(const Napi::Value& v, const std::string& what);
bool toBool(const Napi::Value& v, const std::string& what);
std::string toString(const Napi::Value& v, const std::string& what);
Napi::Array toArray(const Napi::Value& v, const std::string& what);

}  // namespace byol
