// Autocast (mixed precision): libtorch's thread-local switches that make eligible ops (matmul,
// linear, convolutions) run in bfloat16 or float16 while the weights stay float32. The JS scope
// (src/engine/autocast.ts) enters and exits exactly as PyTorch's torch.autocast context does:
// remember the previous state, switch on, count the nesting; on exit drop the cache of cast
// weights once the outermost scope ends, and restore the previous state.
#include "holder.h"
#include <ATen/autocast_mode.h>
#include <torch/version.h>

namespace byol {

// libtorch 2.4 replaced the per-device functions (is_cpu_enabled, set_autocast_gpu_dtype, ...)
// with ones taking the device type; the old names remain there only as deprecated shims.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
static bool isEnabled(c10::DeviceType d) { return at::autocast::is_autocast_enabled(d); }
static void setEnabled(c10::DeviceType d, bool on) { at::autocast::set_autocast_enabled(d, on); }
static c10::ScalarType getDtype(c10::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
static void setDtype(c10::DeviceType d, c10::ScalarType t) { at::autocast::set_autocast_dtype(d, t); }
#else
static bool isEnabled(c10::DeviceType d) { return d == c10::DeviceType::CPU ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled(); }
static void setEnabled(c10::DeviceType d, bool on) {
  if (d == c10::DeviceType::CPU) at::autocast::set_cpu_enabled(on);
  else at::autocast::set_enabled(on);
}
static c10::ScalarType getDtype(c10::DeviceType d) {
  return d == c10::DeviceType::CPU ? at::autocast::get_autocast_cpu_dtype() : at::autocast::get_autocast_gpu_dtype();
}
static void setDtype(c10::DeviceType d, c10::ScalarType t) {
  if (d == c10::DeviceType::CPU) at::autocast::set_autocast_cpu_dtype(t);
  else at::autocast::set_autocast_gpu_dtype(t);
}
#endif

// 'cpu' or 'cuda': autocast has one switch per device type, not per device.
static c10::DeviceType toDeviceType(const Napi::Value& v, const std::string& what) {
  std::string name = toString(v, what);
  if (name == "cpu") return c10::DeviceType::CPU;
  if (name == "cuda") return c10::DeviceType::CUDA;
  throw Napi::RangeError::New(v.Env(), what + " must be 'cpu' or 'cuda', got '" + name + "'");
}

// The lower precisions each device's autocast has: bfloat16 on the CPU (libtorch 1.13's CPU
// autocast has no float16 kernels), float16 and bfloat16 on CUDA.
static c10::ScalarType toAutocastDtype(const Napi::Value& v, c10::DeviceType device, const std::string& what) {
  auto dtype = static_cast<c10::ScalarType>(toInt64(v, what, 0, static_cast<int64_t>(c10::ScalarType::NumOptions) - 1));
  bool ok = dtype == c10::ScalarType::BFloat16 || (dtype == c10::ScalarType::Half && device == c10::DeviceType::CUDA);
  if (!ok) {
    throw Napi::RangeError::New(v.Env(), what + " " + c10::toString(dtype) + " is not an autocast dtype on " +
                                             (device == c10::DeviceType::CPU ? "the CPU (bfloat16 only)" : "CUDA (float16 or bfloat16)"));
  }
  return dtype;
}

static Napi::Array state(Napi::Env env, c10::DeviceType device) {
  auto out = Napi::Array::New(env, 3);
  out.Set(0u, Napi::Boolean::New(env, isEnabled(device)));
  out.Set(1u, Napi::Number::New(env, static_cast<int>(getDtype(device))));
  out.Set(2u, Napi::Boolean::New(env, at::autocast::is_autocast_cache_enabled()));
  return out;
}

// autocastState(deviceType) -> [enabled, dtype code, cache enabled]
static Napi::Value AutocastState(const Napi::CallbackInfo& info) {
  c10::DeviceType device = toDeviceType(info[0], "autocastState: device type");
  return guarded(info.Env(), "autocastState", [&]() -> Napi::Value { return state(info.Env(), device); });
}

// autocastEnter(deviceType, dtype code) -> the previous [enabled, dtype code, cache enabled], for autocastExit.
static Napi::Value AutocastEnter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  c10::DeviceType device = toDeviceType(info[0], "autocastEnter: device type");
  c10::ScalarType dtype = toAutocastDtype(info[1], device, "autocastEnter: dtype");
  return guarded(env, "autocastEnter", [&]() -> Napi::Value {
    Napi::Array previous = state(env, device);
    setDtype(device, dtype);
    setEnabled(device, true);
    at::autocast::increment_nesting();
    at::autocast::set_autocast_cache_enabled(true);
    return previous;
  });
}

// autocastExit(deviceType, previous enabled, previous dtype code, previous cache enabled)
static Napi::Value AutocastExit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  c10::DeviceType device = toDeviceType(info[0], "autocastExit: device type");
  bool enabled = toBool(info[1], "autocastExit: enabled");
  auto dtype = static_cast<c10::ScalarType>(
      toInt64(info[2], "autocastExit: dtype", 0, static_cast<int64_t>(c10::ScalarType::NumOptions) - 1));
  // What autocastEnter returned: a floating dtype (libtorch's defaults are bfloat16 on the CPU and
  // float16 on CUDA). Anything else would make every later autocast op cast to it.
  if (dtype != c10::ScalarType::BFloat16 && dtype != c10::ScalarType::Half && dtype != c10::ScalarType::Float) {
    throw Napi::RangeError::New(env, std::string("autocastExit: dtype ") + c10::toString(dtype) +
                                         " is not one autocast computes in (bfloat16, float16 or float32)");
  }
  bool cacheEnabled = toBool(info[3], "autocastExit: cache enabled");
  guarded(env, "autocastExit", [&] {
    // The cast copies of the weights are reused within a scope; they are dropped once the
    // outermost scope ends (torch.autocast.__exit__), else they would pin memory and go stale
    // after the optimizer's step.
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    setEnabled(device, enabled);
    setDtype(device, dtype);
    at::autocast::set_autocast_cache_enabled(cacheEnabled);
  });
  return env.Undefined();
}

void initAutocast(Napi::Env env, Napi::Object exports) {
  exports.Set("autocastState", Napi::Function::New(env, AutocastState));
  exports.Set("autocastEnter", Napi::Function::New(env, AutocastEnter));
  exports.Set("autocastExit", Napi::Function::New(env, AutocastExit));
}

}  // namespace byol
