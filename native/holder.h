// How a libtorch tensor lives in JavaScript: a Napi::External owning a TensorHolder.
// The JS Tensor class (src/engine/tensor.ts) frees it deterministically with dispose();
// the External's finalizer is the safety net when a handle is only garbage collected.
#pragma once
#include <napi.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <string>

namespace byol {

struct TensorHolder {
  at::Tensor tensor;
  int64_t reportedBytes = 0;  // what this handle told V8 it holds (napi_adjust_external_memory)
};

// Wraps a tensor in a new handle; an undefined tensor becomes null.
Napi::Value wrapTensor(Napi::Env env, at::Tensor tensor);

// The holder behind a handle, or a TypeError naming `what` when v is not a tensor handle.
TensorHolder* holderOf(const Napi::Value& v, const std::string& what);

// The live tensor behind a handle; throws when it was disposed.
const at::Tensor& tensorOf(const Napi::Value& v, const std::string& what);

// "[2, 3] float32 cpu" for error messages.
std::string describe(const at::Tensor& t);

// Runs body and turns libtorch's errors into JavaScript Errors, prefixed with context:
// a bad call must throw in JS, never abort the process.
template <typename Body>
auto guarded(Napi::Env env, const std::string& context, Body body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, context + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, context + ": " + e.what());
  }
}

void initTensor(Napi::Env env, Napi::Object exports);
void initOps(Napi::Env env, Napi::Object exports);
void initAutograd(Napi::Env env, Napi::Object exports);
void initRuntime(Napi::Env env, Napi::Object exports);

}  // namespace byol
