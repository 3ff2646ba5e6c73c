// Process-wide settings: random seed, intra-op threads, devices, libtorch's version.
#include "holder.h"
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/version.h>

namespace byol {

static Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  bool lossless = true;
  uint64_t seed = info[0].IsBigInt() ? info[0].As<Napi::BigInt>().Uint64Value(&lossless)
                                     : static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  at::manual_seed(seed);  // seeds the CPU generator and, when present, every CUDA one
  return info.Env().Undefined();
}

// createGenerator(seed, device) -> a generator handle, for random ops that must not touch the
// global stream (seeded augmentations, reproducible data order).
static Napi::Value CreateGenerator(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t seed = static_cast<uint64_t>(info[0].As<Napi::Number>().Int64Value());
  std::string device = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "cpu";
  return guarded(env, "createGenerator", [&]() -> Napi::Value {
    at::Generator g = c10::Device(device).is_cuda() ? at::detail::getCUDAHooks().getDefaultCUDAGenerator().clone()
                                                    : at::detail::createCPUGenerator(seed);
    g.set_current_seed(seed);
    return Napi::External<at::Generator>::New(env, new at::Generator(std::move(g)),
                                              [](Napi::BasicEnv, at::Generator* p) { delete p; });
  });
}

static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  int n = info[0].As<Napi::Number>().Int32Value();
  if (n < 1) throw Napi::RangeError::New(info.Env(), "setNumThreads: n must be at least 1, got " + std::to_string(n));
  at::set_num_threads(n);
  return info.Env().Undefined();
}

static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), at::get_num_threads());
}

static Napi::Value CudaDeviceCount(const Napi::CallbackInfo& info) {
  int n = at::hasCUDA() ? at::detail::getCUDAHooks().getNumGPUs() : 0;
  return Napi::Number::New(info.Env(), n);
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
