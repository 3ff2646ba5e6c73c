// The parts of autograd that are tensor properties rather than ops: .grad, requiresGrad,
// leaf status and the global grad mode. backward() itself is the op aten::_backward.
#include "holder.h"
#include <c10/core/GradMode.h>

namespace byol {

static Napi::Value Grad(const Napi::CallbackInfo& info) {
  const at::Tensor& t = tensorOf(info[0], "grad: tensor");
  return guarded(info.Env(), [&] { return "grad(" + describe(t) + ")"; },
                 [&]() -> Napi::Value { return wrapTensor(info.Env(), t.grad()); });
}

// setGrad(t, g | null): null clears the gradient (PyTorch's zero_grad(set_to_none=True)).
static Napi::Value SetGrad(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const at::Tensor& t = tensorOf(info[0], "setGrad: tensor");
  at::Tensor g = info[1].IsNull() || info[1].IsUndefined() ? at::Tensor() : tensorOf(info[1], "setGrad: gradient");
  guarded(env, [&] { return "setGrad(" + describe(t) + ", " + describe(g) + ")"; }, [&] {
    if (g.defined() && (g.is_nested() || t.is_nested() || g.sizes() != t.sizes() || g.scalar_type() != t.scalar_type() ||
                        g.device() != t.device())) {
      throw Napi::Error::New(env, "setGrad: the gradient " + describe(g) + " must match the tensor " + describe(t) +
                                      " in shape, dtype and device");
    }
    const_cast<at::Tensor&>(t).mutable_grad() = g;
  });
  return env.Undefined();
}

static Napi::Value RequiresGrad(const Napi::CallbackInfo& info) {
  const at::Tensor& t = tensorOf(info[0], "requiresGrad: tensor");
  return guarded(info.Env(), [&] { return "requiresGrad(" + describe(t) + ")"; },
                 [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), t.requires_grad()); });
}

static Napi::Value IsLeaf(const Napi::CallbackInfo& info) {
  const at::Tensor& t = tensorOf(info[0], "isLeaf: tensor");
  return guarded(info.Env(), [&] { return "isLeaf(" + describe(t) + ")"; },
                 [&]() -> Napi::Value { return Napi::Boolean::New(info.Env(), t.is_leaf()); });
}

// setGradEnabled(bool) -> the previous mode, so a JS scope can restore it.
static Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  bool enabled = toBool(info[0], "setGradEnabled: enabled");
  bool previous = c10::GradMode::is_enabled();
  c10::GradMode::set_enabled(enabled);
  return Napi::Boolean::New(info.Env(), previous);
}

static Napi::Value IsGradEnabled(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), c10::GradMode::is_enabled());
}

void initAutograd(Napi::Env env, Napi::Object exports) {
  exports.Set("grad", Napi::Function::New(env, Grad));
  exports.Set("setGrad", Napi::Function::New(env, SetGrad));
  exports.Set("requiresGrad", Napi::Function::New(env, RequiresGrad));
  exports.Set("isLeaf", Napi::Function::New(env, IsLeaf));
  exports.Set("setGradEnabled", Napi::Function::New(env, SetGradEnabled));
  exports.Set("isGradEnabled", Napi::Function::New(env, IsGradEnabled));
}

}  // namespace byol
