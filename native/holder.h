// How a libtorch tensor lives in JavaScript: a Napi::External owning a TensorHolder.
// The JS Tensor class (src/engine/tensor.ts) frees it deterministically with dispose();
// the External's finalizer is the safety net when a handle is only garbage collected.
// Generators live the same way, as an External owning an at::Generator.
#pragma once
#include <napi.h>
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <string>
#include <type_traits>
#include "args.h"

namespace byol {

struct TensorHolder {
  at::Tensor tensor;
  int64_t reportedBytes = 0;  // what this handle told V8 it holds (napi_adjust_external_memory)
};

// Every External this addon makes carries the type tag of what it owns, and every read checks
// it: IsExternal() alone would take a generator, or another addon's handle, for a tensor.
extern const napi_type_tag kTensorTag;
extern const napi_type_tag kGeneratorTag;

// Wraps a tensor in a new handle; an undefined tensor becomes null.
Napi::Value wrapTensor(Napi::Env env, at::Tensor tensor);

// The holder behind a handle, or a TypeError naming `what` when v is not a tensor handle.
TensorHolder* holderOf(const Napi::Value& v, const std::string& what);

// The live tensor behind a handle; throws when it was disposed.
const at::Tensor& tensorOf(const Napi::Value& v, const std::string& what);

// Wraps a generator in a new handle.
Napi::Value wrapGenerator(Napi::Env env, at::Generator generator);

// The generator behind a handle, or a TypeError naming `what` when v is not a generator handle.
const at::Generator& generatorOf(const Napi::Value& v, const std::string& what);

// "[2, 3] float32 cpu" for error messages. Never throws (a nested tensor has no sizes()), so it
// can be called anywhere, a catch included.
std::string describe(const at::Tensor& t) noexcept;

// Runs body and turns every C++ exception into a JavaScript Error prefixed with context: a bad
// call must throw in JS, never abort the process. Napi errors pass through; their messages name
// the function already. context is a string, or a function returning one, so hot accessors build
// their description ("meta([2, 3] float32 cpu)") only when something failed.
template <typename Context, typename Body>
auto guarded(Napi::Env env, const Context& context, Body body) -> decltype(body()) {
  auto prefix = [&]() -> std::string {
    if constexpr (std::is_invocable_v<Context>) return context() + ": ";
    else return std::string(context) + ": ";
  };
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, prefix() + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, prefix() + e.what());
  } catch (...) {
    throw Napi::Error::New(env, prefix() + "an unknown native error");
  }
}

void initTensor(Napi::Env env, Napi::Object exports);
void initOps(Napi::Env env, Napi::Object exports);
void initAutograd(Napi::Env env, Napi::Object exports);
void initRuntime(Napi::Env env, Napi::Object exports);
void initAutocast(Napi::Env env, Napi::Object exports);
void initCpuBlockCache(Napi::Env env, Napi::Object exports);
void initDistributed(Napi::Env env, Napi::Object exports);

}  // namespace byol
