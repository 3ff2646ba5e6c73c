// Process-wide settings: random seed, intra-op threads, devices, libtorch's version.
#include "holder.h"
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/version.h>
#include <limits>

namespace byol {

static Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  uint64_t seed = toSeed(info[0], "manualSeed: seed");
  guarded(info.Env(), "manualSeed", [&] { at::manual_seed(seed); });  // the CPU generator and every CUDA one
  return info.Env().Undefined();
}

// createGenerator(seed, device) -> a generator handle, for random ops that must not touch the
// global stream (seeded augmentations, reproducible data order).
static Napi::Value CreateGenerator(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t seed = toSeed(info[0], "Generator: seed");
  std::string device = info[1].IsUndefined() ? "cpu" : toString(info[1], "Generator: device");
  return guarded(env, "Generator(" + std::to_string(seed) + ", '" + device + "')", [&]() -> Napi::Value {
    c10::Device where(device);
    if (!where.is_cpu() && !where.is_cuda()) {
      throw Napi::RangeError::New(env, "Generator: device must be 'cpu' or 'cuda[:N]', got '" + device + "'");
    }
    at::Generator g = where.is_cpu() ? at::detail::createCPUGenerator(seed)
                                     : at::detail::getCUDAHooks().getDefaultCUDAGenerator(where.has_index() ? where.index() : -1).clone();
    g.set_current_seed(seed);
    return wrapGenerator(env, std::move(g));
  });
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int64_t n = toInt64(info[0], "setNumThreads: n", 1, std::numeric_limits<int>::max());
  guarded(info.Env(), "setNumThreads", [&] { at::set_num_threads(static_cast<int>(n)); });
  return info.Env().Undefined();
}

static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

static Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  return guarded(info.Env(), "cudaDeviceCount", [&]() -> Napi::Value {
    int n = at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0;
    return Napi::Number::New(info.Env(), n);
  });
}

void initRuntime(Napi::Env env, Napi::Object exports) {
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed));
  exports.Set("createGenerator", Napi::Function::New(env, CreateGenerator));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads));
  exports.Set("getNumThreads", Napi::Function::New(env, GetNumThreads));
  exports.Set("cudaDeviceCount", Napi::Function::New(env, CudaDeviceCount));
  exports.Set("libtorchVersion", Napi::String::New(env, TORCH_VERSION));
}

}  // namespace byol
