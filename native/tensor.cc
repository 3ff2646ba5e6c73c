// Tensor handles: creation from JS buffers, copying back, metadata and disposal.
#include "holder.h"
#include <ATen/ATen.h>
#include <cstring>
#include <sstream>

namespace byol {

static int64_t bytesOf(const at::Tensor& t) {
  // Host memory only: V8's heuristics are about this process's RAM, not a GPU's.
  if (!t.defined() || !t.device().is_cpu()) return 0;
  return static_cast<int64_t>(t.numel()) * static_cast<int64_t>(t.element_size());
}

static void release(Napi::BasicEnv env, TensorHolder* h) {
  if (h->reportedBytes != 0) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -h->reportedBytes);
    h->reportedBytes = 0;
  }
  h->tensor = at::Tensor();
}

Napi::Value wrapTensor(Napi::Env env, at::Tensor tensor) {
  if (!tensor.defined()) return env.Null();
  auto* h = new TensorHolder{std::move(tensor), 0};
  h->reportedBytes = bytesOf(h->tensor);
  if (h->reportedBytes != 0) Napi::MemoryManagement::AdjustExternalMemory(env, h->reportedBytes);
  // A "basic" finalizer (it calls no JS) runs inside the garbage collection itself; an ordinary
  // one is deferred to the event loop, so a synchronous training loop would never free anything.
  return Napi::External<TensorHolder>::New(env, h, [](Napi::BasicEnv env, TensorHolder* h) {
    release(env, h);
    delete h;
  });
}

TensorHolder* holderOf(const Napi::Value& v, const std::string& what) {
  if (!v.IsExternal()) throw Napi::TypeError::New(v.Env(), what + " is not a tensor");
  return v.As<Napi::External<TensorHolder>>().Data();
}

const at::Tensor& tensorOf(const Napi::Value& v, const std::string& what) {
  TensorHolder* h = holderOf(v, what);
  if (!h->tensor.defined()) throw Napi::Error::New(v.Env(), what + " was disposed");
  return h->tensor;
}

// The dtype names byol-align's TypeScript API uses, so messages read the same on both sides.
static const char* dtypeName(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return "float32";
    case c10::ScalarType::Double: return "float64";
    case c10::ScalarType::Half: return "float16";
    case c10::ScalarType::BFloat16: return "bfloat16";
    case c10::ScalarType::Int: return "int32";
    case c10::ScalarType::Long: return "int64";
    case c10::ScalarType::Byte: return "uint8";
    case c10::ScalarType::Bool: return "bool";
    default: return c10::toString(t);
  }
}

std::string describe(const at::Tensor& t) {
  if (!t.defined()) return "<disposed>";
  std::ostringstream s;
  s << t.sizes() << " " << dtypeName(t.scalar_type()) << " " << t.device();
  return s.str();
}

// fromBuffer(arrayBufferView, shape: number[], dtype: ScalarType code) -> handle (a copy).
static Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "fromBuffer", [&]() -> Napi::Value {
    auto view = info[0].As<Napi::TypedArray>();
    auto shapeArray = info[1].As<Napi::Array>();
    auto dtype = static_cast<c10::ScalarType>(info[2].As<Napi::Number>().Int32Value());
    std::vector<int64_t> shape(shapeArray.Length());
    int64_t numel = 1;
    for (uint32_t i = 0; i < shapeArray.Length(); i++) {
      shape[i] = shapeArray.Get(i).As<Napi::Number>().Int64Value();
      numel *= shape[i];
    }
    auto out = at::empty(shape, at::TensorOptions().dtype(dtype));
    size_t expected = static_cast<size_t>(numel) * out.element_size();
    if (view.ByteLength() != expected) {
      throw Napi::RangeError::New(env, "fromBuffer: buffer holds " + std::to_string(view.ByteLength()) +
                                           " bytes but shape " + describe(out) + " needs " +
                                           std::to_string(expected));
    }
    auto* src = static_cast<uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
    if (expected > 0) std::memcpy(out.data_ptr(), src, expected);
    return wrapTensor(env, std::move(out));
  });
}

// toBuffer(handle) -> ArrayBuffer with the tensor's elements in row-major order.
static Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = tensorOf(info[0], "toBuffer: argument");
  return guarded(env, "toBuffer(" + describe(t) + ")", [&]() -> Napi::Value {
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    size_t bytes = static_cast<size_t>(c.numel()) * c.element_size();
    auto buffer = Napi::ArrayBuffer::New(env, bytes);
    if (bytes > 0) std::memcpy(buffer.Data(), c.data_ptr(), bytes);
    return buffer;
  });
}

// meta(handle) -> [shape, dtype code, device string, requiresGrad]
static Napi::Value Meta(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = tensorOf(info[0], "meta: argument");
  auto shape = Napi::Array::New(env, t.dim());
  for (int64_t i = 0; i < t.dim(); i++) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, t.size(i)));
  auto out = Napi::Array::New(env, 4);
  out.Set(0u, shape);
  out.Set(1u, Napi::Number::New(env, static_cast<int>(t.scalar_type())));
  out.Set(2u, Napi::String::New(env, t.device().str()));
  out.Set(3u, Napi::Boolean::New(env, t.requires_grad()));
  return out;
}

static Napi::Value IsContiguous(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), tensorOf(info[0], "isContiguous: argument").is_contiguous());
}

static Napi::Value Dispose(const Napi::CallbackInfo& info) {
  release(info.Env(), holderOf(info[0], "dispose: argument"));
  return info.Env().Undefined();
}

static Napi::Value IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !holderOf(info[0], "isDisposed: argument")->tensor.defined());
}

// dataPtr(handle): address of the first element, so tests can tell a view from a copy.
static Napi::Value DataPtr(const Napi::CallbackInfo& info) {
  const at::Tensor& t = tensorOf(info[0], "dataPtr: argument");
  return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(t.data_ptr())));
}

void initTensor(Napi::Env env, Napi::Object exports) {
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer));
  exports.Set("toBuffer", Napi::Function::New(env, ToBuffer));
  exports.Set("meta", Napi::Function::New(env, Meta));
  exports.Set("isContiguous", Napi::Function::New(env, IsContiguous));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  exports.Set("isDisposed", Napi::Function::New(env, IsDisposed));
  exports.Set("dataPtr", Napi::Function::New(env, DataPtr));
}

}  // namespace byol
