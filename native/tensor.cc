// Tensor handles: creation from JS buffers, copying back, metadata and disposal.
#include "holder.h"
#include <ATen/ATen.h>
#include <cstring>
#include <limits>
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

// Random 128-bit constants; only their being distinct from every other tag matters.
const napi_type_tag kTensorTag = {0x5be5a0f1d24c4e3aULL, 0x9d0b7c1e6f2a8b44ULL};
const napi_type_tag kGeneratorTag = {0x1f7c3e9a8b6d4c2eULL, 0xa4e2d0c8b6f19375ULL};

// A new handle reports nothing to V8: tensors made inside a tidy() scope (every step of a training
// loop) are held by that scope until it disposes them, so a garbage collection could free none of
// them, and reporting each one made V8 start a full collection every 64 MB of growth (dozens per
// training step, a third of the time in the text encoder's forward). The JS side reports a tensor
// through reportMemory once no scope owns it (src/engine/scope.ts), and only then can GC help.
Napi::Value wrapTensor(Napi::Env env, at::Tensor tensor) {
  if (!tensor.defined()) return env.Null();
  auto* h = new TensorHolder{std::move(tensor), 0};
  // A "basic" finalizer (it calls no JS) runs inside the garbage collection itself; an ordinary
  // one is deferred to the event loop, so a synchronous training loop would never free anything.
  auto handle = Napi::External<TensorHolder>::New(env, h, [](Napi::BasicEnv env, TensorHolder* h) {
    release(env, h);
    delete h;
  });
  handle.TypeTag(&kTensorTag);
  return handle;
}

TensorHolder* holderOf(const Napi::Value& v, const std::string& what) {
  if (!v.IsExternal() || !v.As<Napi::External<TensorHolder>>().CheckTypeTag(&kTensorTag)) {
    throw Napi::TypeError::New(v.Env(), what + " is not a tensor (got " + describeValue(v) + ")");
  }
  return v.As<Napi::External<TensorHolder>>().Data();
}

const at::Tensor& tensorOf(const Napi::Value& v, const std::string& what) {
  TensorHolder* h = holderOf(v, what);
  if (!h->tensor.defined()) throw Napi::Error::New(v.Env(), what + " was disposed");
  return h->tensor;
}

Napi::Value wrapGenerator(Napi::Env env, at::Generator generator) {
  auto handle = Napi::External<at::Generator>::New(env, new at::Generator(std::move(generator)),
                                                   [](Napi::BasicEnv, at::Generator* p) { delete p; });
  handle.TypeTag(&kGeneratorTag);
  return handle;
}

const at::Generator& generatorOf(const Napi::Value& v, const std::string& what) {
  if (!v.IsExternal() || !v.As<Napi::External<at::Generator>>().CheckTypeTag(&kGeneratorTag)) {
    throw Napi::TypeError::New(v.Env(), what + " is not a Generator (got " + describeValue(v) + ")");
  }
  return *v.As<Napi::External<at::Generator>>().Data();
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

std::string describe(const at::Tensor& t) noexcept {
  try {
    if (!t.defined()) return "<disposed>";
    std::ostringstream s;
    // A nested tensor's components have different shapes: it has no sizes() to print.
    if (t.is_nested()) s << "nested";
    else s << t.sizes();
    s << " " << dtypeName(t.scalar_type()) << " " << t.device();
    return s.str();
  } catch (...) {
    return "<a tensor that cannot be described>";
  }
}

// The dtypes byol-align names (src/engine/dtype.ts); fromBuffer makes no others.
static c10::ScalarType toDtype(const Napi::Value& v, const std::string& what) {
  int64_t code = toInt64(v, what, 0, static_cast<int64_t>(c10::ScalarType::NumOptions) - 1);
  auto dtype = static_cast<c10::ScalarType>(code);
  switch (dtype) {
    case c10::ScalarType::Float:
    case c10::ScalarType::Double:
    case c10::ScalarType::Half:
    case c10::ScalarType::Int:
    case c10::ScalarType::Long:
    case c10::ScalarType::Byte:
    case c10::ScalarType::Bool:
      return dtype;
    default:
      throw Napi::RangeError::New(v.Env(),
                                  what + " " + std::to_string(code) + " (" + dtypeName(dtype) + ") is not a dtype byol-align makes");
  }
}

// libtorch's own limit is far above any real tensor; this one keeps a sparse JS array of length
// 2^32 − 1 from allocating a shape vector of 32 GB before anything is checked.
static constexpr uint32_t kMaxDims = 64;

// fromBuffer(typedArray, shape: number[], dtype: ScalarType code) -> handle (a copy).
static Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guarded(env, "fromBuffer", [&]() -> Napi::Value {
    if (!info[0].IsTypedArray()) throw Napi::TypeError::New(env, "fromBuffer: data must be a typed array, got " + describeValue(info[0]));
    Napi::Array shapeArray = toArray(info[1], "fromBuffer: shape");
    c10::ScalarType dtype = toDtype(info[2], "fromBuffer: dtype");
    if (shapeArray.Length() > kMaxDims) {
      throw Napi::RangeError::New(env, "fromBuffer: shape has " + std::to_string(shapeArray.Length()) + " dimensions, more than " +
                                           std::to_string(kMaxDims));
    }
    std::vector<int64_t> shape(shapeArray.Length());
    std::string shapeText;
    for (uint32_t i = 0; i < shapeArray.Length(); i++) {
      shape[i] = toInt64(shapeArray.Get(i), "fromBuffer: shape[" + std::to_string(i) + "]", 0);
      shapeText += (i > 0 ? ", " : "") + std::to_string(shape[i]);
    }
    // libtorch multiplies every dimension, zeros included, before it looks at the product
    // ([2^32, 2^32, 0] overflows), so the byte count is checked the same way here, before
    // anything is allocated.
    uint64_t bytes = static_cast<uint64_t>(c10::elementSize(dtype));
    bool overflow = false;
    for (int64_t d : shape) overflow = overflow || __builtin_mul_overflow(bytes, static_cast<uint64_t>(d == 0 ? 1 : d), &bytes);
    if (overflow || bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw Napi::RangeError::New(env, "fromBuffer: shape [" + shapeText + "] " + dtypeName(dtype) + " is too large to address");
    }
    for (int64_t d : shape) if (d == 0) bytes = 0;
    auto view = info[0].As<Napi::TypedArray>();
    if (view.ByteLength() != bytes) {
      throw Napi::RangeError::New(env, "fromBuffer: buffer holds " + std::to_string(view.ByteLength()) + " bytes but shape [" + shapeText +
                                           "] " + dtypeName(dtype) + " cpu needs " + std::to_string(bytes));
    }
    void* src = nullptr;
    napi_status status = napi_get_typedarray_info(env, view, nullptr, nullptr, &src, nullptr, nullptr);
    if (status != napi_ok) throw Napi::Error::New(env);
    auto out = at::empty(shape, at::TensorOptions().dtype(dtype));
    if (bytes > 0) std::memcpy(out.data_ptr(), src, bytes);
    return wrapTensor(env, std::move(out));
  });
}

// toBuffer(handle) -> ArrayBuffer with the tensor's elements in row-major order.
static Napi::Value ToBuffer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = tensorOf(info[0], "toBuffer: argument");
  return guarded(env, [&] { return "toBuffer(" + describe(t) + ")"; }, [&]() -> Napi::Value {
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
  return guarded(env, [&] { return "meta(" + describe(t) + ")"; }, [&]() -> Napi::Value {
    if (t.is_nested()) {
      throw Napi::TypeError::New(env, "meta(" + describe(t) +
                                          "): a nested tensor has no single shape; byol-align reads only strided tensors");
    }
    auto sizes = t.sizes();
    auto shape = Napi::Array::New(env, sizes.size());
    for (size_t i = 0; i < sizes.size(); i++) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(sizes[i])));
    auto out = Napi::Array::New(env, 4);
    out.Set(0u, shape);
    out.Set(1u, Napi::Number::New(env, static_cast<int>(t.scalar_type())));
    out.Set(2u, Napi::String::New(env, t.device().str()));
    out.Set(3u, Napi::Boolean::New(env, t.requires_grad()));
    return out;
  });
}

static Napi::Value IsContiguous(const Napi::CallbackInfo& info) {
  const at::Tensor& t = tensorOf(info[0], "isContiguous: argument");
  return guarded(info.Env(), [&] { return "isContiguous(" + describe(t) + ")"; },
                 [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), t.is_contiguous()); });
}

static Napi::Value Dispose(const Napi::CallbackInfo& info) {
  release(info.Env(), holderOf(info[0], "dispose: argument"));
  return info.Env().Undefined();
}

// reportMemory(handle): tells V8 the tensor's host bytes (napi_adjust_external_memory), so that
// collections run when dropped handles hold much native memory; once per handle, undone when it
// is disposed or finalized.
static Napi::Value ReportMemory(const Napi::CallbackInfo& info) {
  TensorHolder* h = holderOf(info[0], "reportMemory: argument");
  if (h->reportedBytes == 0 && h->tensor.defined()) {
    h->reportedBytes = bytesOf(h->tensor);
    if (h->reportedBytes != 0) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), h->reportedBytes);
  }
  return info.Env().Undefined();
}

static Napi::Value IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !holderOf(info[0], "isDisposed: argument")->tensor.defined());
}

// dataPtr(handle): address of the first element, so tests can tell a view from a copy.
static Napi::Value DataPtr(const Napi::CallbackInfo& info) {
  const at::Tensor& t = tensorOf(info[0], "dataPtr: argument");
  return guarded(info.Env(), [&] { return "dataPtr(" + describe(t) + ")"; }, [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(reinterpret_cast<uintptr_t>(t.data_ptr())));
  });
}

void initTensor(Napi::Env env, Napi::Object exports) {
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer));
  exports.Set("toBuffer", Napi::Function::New(env, ToBuffer));
  exports.Set("meta", Napi::Function::New(env, Meta));
  exports.Set("isContiguous", Napi::Function::New(env, IsContiguous));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  exports.Set("isDisposed", Napi::Function::New(env, IsDisposed));
  exports.Set("reportMemory", Napi::Function::New(env, ReportMemory));
  exports.Set("dataPtr", Napi::Function::New(env, DataPtr));
}

}  // namespace byol
