// Entry point of the byol-align addon. Each area registers its own functions.
#include "holder.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  byol::initTensor(env, exports);
  byol::initOps(env, exports);
  byol::initAutograd(env, exports);
  byol::initRuntime(env, exports);
  byol::initAutocast(env, exports);
  byol::initCpuBlockCache(env, exports);
  byol::initDistributed(env, exports);
  return exports;
}

NODE_API_MODULE(byol_align_native, Init)
