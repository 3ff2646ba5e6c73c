// Every tensor op reaches libtorch through one door: the c10 dispatcher, called boxed with the
// operator's schema (the way TorchScript calls ops). JS looks an op up once by name and overload
// ("aten::add", "Tensor") and then calls it by index; arguments are converted by the schema's
// types, missing trailing ones take the schema's defaults. Autograd, CUDA and every kernel are
// libtorch's own, and the same code builds against libtorch 1.13 and 2.x.
#include "holder.h"
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/core/ivalue.h>
#include <ATen/core/List.h>
#include <ATen/core/Generator.h>
#include <ATen/core/stack.h>
#include <cmath>
#include <mutex>
#include <sstream>
#include <vector>

namespace byol {

static std::mutex registryMutex;
static std::vector<c10::OperatorHandle> registry;

// opHandle(name, overload) -> index; throws when libtorch has no such operator.
static Napi::Value OpHandle(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = toString(info[0], "op: name");
  std::string overload = info[1].IsUndefined() ? "" : toString(info[1], "op: overload");
  return guarded(env, "op " + name + (overload.empty() ? "" : "." + overload), [&]() -> Napi::Value {
    auto found = c10::Dispatcher::singleton().findOp(c10::OperatorName(name, overload));
    if (!found.has_value()) throw Napi::Error::New(env, "this libtorch has no operator " + name + "." + overload);
    std::lock_guard<std::mutex> lock(registryMutex);
    registry.push_back(*found);
    return Napi::Number::New(env, static_cast<double>(registry.size() - 1));
  });
}

static bool isNullish(const Napi::Value& v) { return v.IsNull() || v.IsUndefined(); }

static int64_t toInt(const Napi::Value& v, const std::string& what) {
  if (v.IsBoolean()) return v.As<Napi::Boolean>().Value() ? 1 : 0;
  return toInt64(v, what);
}

// A JS number as a Scalar: integers stay integers so integer tensors keep their dtype.
static c10::IValue toNumber(const Napi::Value& v, const std::string& what) {
  if (v.IsBoolean()) return c10::IValue(v.As<Napi::Boolean>().Value());
  if (v.IsBigInt()) return c10::IValue(toInt64(v, what));
  double d = toDouble(v, what);
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return c10::IValue(static_cast<int64_t>(d));
  return c10::IValue(d);
}

// Values whose schema type we do not special-case (enums such as ScalarType, Layout and
// MemoryFormat are ints on the boxed stack) are converted by what they are in JS.
static c10::IValue byJsType(const Napi::Value& v, const std::string& what) {
  if (isNullish(v)) return c10::IValue();
  if (v.IsExternal()) {
    if (v.As<Napi::External<void>>().CheckTypeTag(&kGeneratorTag)) return c10::IValue(generatorOf(v, what));
    return c10::IValue(tensorOf(v, what));
  }
  if (v.IsBoolean() || v.IsNumber() || v.IsBigInt()) return toNumber(v, what);
  if (v.IsString()) return c10::IValue(v.As<Napi::String>().Utf8Value());
  throw Napi::TypeError::New(v.Env(), what + " cannot be " + describeValue(v));
}

// ScalarType, Layout and MemoryFormat travel as plain ints on the boxed stack (the schema's
// real_type() still says which), and libtorch indexes tables with them unchecked: a code out of
// range is refused here instead of read out of bounds.
static void checkEnumCode(const Napi::Value& v, const c10::TypePtr& realType, const std::string& what) {
  const c10::Type* t = realType.get();
  if (t->kind() == c10::TypeKind::OptionalType) {
    if (isNullish(v)) return;
    t = t->castRaw<c10::OptionalType>()->getElementType().get();
  }
  int64_t count;
  switch (t->kind()) {
    case c10::TypeKind::ScalarTypeType: count = static_cast<int64_t>(c10::ScalarType::NumOptions); break;
    case c10::TypeKind::LayoutType: count = static_cast<int64_t>(c10::Layout::NumOptions); break;
    case c10::TypeKind::MemoryFormatType: count = static_cast<int64_t>(c10::MemoryFormat::NumOptions); break;
    default: return;
  }
  toInt64(v, what, 0, count - 1);
}

static c10::IValue toIValue(const Napi::Value& v, const c10::TypePtr& type, const c10::Argument& arg,
                            const std::string& what) {
  switch (type->kind()) {
    case c10::TypeKind::TensorType:
      return c10::IValue(tensorOf(v, what));
    case c10::TypeKind::OptionalType:
      if (isNullish(v)) return c10::IValue();
      return toIValue(v, type->castRaw<c10::OptionalType>()->getElementType(), arg, what);
    case c10::TypeKind::IntType:
      return c10::IValue(toInt(v, what));
    case c10::TypeKind::FloatType:
      return c10::IValue(toDouble(v, what));
    case c10::TypeKind::BoolType:
      return c10::IValue(toBool(v, what));
    case c10::TypeKind::NumberType:
      return toNumber(v, what);
    case c10::TypeKind::StringType:
      return c10::IValue(toString(v, what));
    case c10::TypeKind::GeneratorType:
      return c10::IValue(generatorOf(v, what));
    case c10::TypeKind::DeviceObjType:
      if (!v.IsString()) {
        throw Napi::TypeError::New(v.Env(), what + " must be a device string such as 'cpu' or 'cuda:0', got " + describeValue(v));
      }
      return c10::IValue(c10::Device(v.As<Napi::String>().Utf8Value()));
    case c10::TypeKind::ListType: {
      const c10::TypePtr& elem = type->castRaw<c10::ListType>()->getElementType();
      switch (elem->kind()) {
        case c10::TypeKind::IntType: {
          c10::List<int64_t> list;
          if (v.IsNumber() || v.IsBigInt()) {  // int[2] kernel_size=3 means [3, 3], as in PyTorch
            int64_t x = toInt(v, what);
            size_t n = arg.N().has_value() ? static_cast<size_t>(*arg.N()) : 1;
            for (size_t i = 0; i < n; i++) list.push_back(x);
          } else {
            auto a = toArray(v, what);
            for (uint32_t i = 0; i < a.Length(); i++) list.push_back(toInt(a.Get(i), what + "[" + std::to_string(i) + "]"));
          }
          return c10::IValue(list);
        }
        case c10::TypeKind::FloatType: {
          c10::List<double> list;
          auto a = toArray(v, what);
          for (uint32_t i = 0; i < a.Length(); i++) list.push_back(toDouble(a.Get(i), what + "[" + std::to_string(i) + "]"));
          return c10::IValue(list);
        }
        case c10::TypeKind::BoolType: {
          c10::List<bool> list;
          auto a = toArray(v, what);
          for (uint32_t i = 0; i < a.Length(); i++) list.push_back(toBool(a.Get(i), what + "[" + std::to_string(i) + "]"));
          return c10::IValue(list);
        }
        case c10::TypeKind::TensorType: {
          c10::List<at::Tensor> list;
          auto a = toArray(v, what);
          for (uint32_t i = 0; i < a.Length(); i++) list.push_back(tensorOf(a.Get(i), what + "[" + std::to_string(i) + "]"));
          return c10::IValue(list);
        }
        case c10::TypeKind::OptionalType: {
          c10::List<c10::optional<at::Tensor>> list;
          auto a = toArray(v, what);
          for (uint32_t i = 0; i < a.Length(); i++) {
            Napi::Value item = a.Get(i);
            if (isNullish(item)) list.push_back(c10::nullopt);
            else list.push_back(tensorOf(item, what + "[" + std::to_string(i) + "]"));
          }
          return c10::IValue(list);
        }
        default:
          throw Napi::TypeError::New(v.Env(), what + ": list type " + type->str() + " is not supported");
      }
    }
    default:
      return byJsType(v, what);
  }
}

static Napi::Value fromIValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return wrapTensor(env, v.toTensor());
  if (v.isNone()) return env.Null();
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isTensorList()) {
    auto list = v.toTensorList();
    auto out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(static_cast<uint32_t>(i), wrapTensor(env, list.get(i)));
    return out;
  }
  if (v.isTuple()) {
    const auto& elems = v.toTupleRef().elements();
    auto out = Napi::Array::New(env, elems.size());
    for (size_t i = 0; i < elems.size(); i++) out.Set(static_cast<uint32_t>(i), fromIValue(env, elems[i]));
    return out;
  }
  if (v.isList()) {
    auto list = v.toListRef();
    auto out = Napi::Array::New(env, list.size());
    for (size_t i = 0; i < list.size(); i++) out.Set(static_cast<uint32_t>(i), fromIValue(env, list[i]));
    return out;
  }
  throw Napi::Error::New(env, "an op returned a value of type " + v.tagKind() + " that byol-align cannot convert");
}

// "aten::mm(self=[2, 3] float32 cpu, mat2=[4, 5] float32 cpu)": built only when a call fails,
// inside a catch, so it never throws (a getter on an argument array may) and runs no JS itself.
static std::string describeCall(const c10::FunctionSchema& schema, const Napi::Value& argsValue) noexcept {
  std::ostringstream s;
  try {
    s << schema.name();
    if (!schema.overload_name().empty()) s << "." << schema.overload_name();
    s << "(";
    if (!argsValue.IsArray()) return s.str() + describeValue(argsValue) + ")";
    auto args = argsValue.As<Napi::Array>();
    for (uint32_t i = 0; i < args.Length() && i < schema.arguments().size(); i++) {
      if (i > 0) s << ", ";
      s << schema.arguments()[i].name() << "=";
      Napi::Value a = args.Get(i);
      if (a.IsArray()) {
        auto arr = a.As<Napi::Array>();
        s << "[";
        for (uint32_t j = 0; j < arr.Length(); j++) {
          if (j > 0) s << ", ";
          if (j == 16) {
            s << "... " << arr.Length() - j << " more";
            break;
          }
          s << describeValue(arr.Get(j));
        }
        s << "]";
      } else if (a.IsUndefined()) s << "default";
      else s << describeValue(a);
    }
    s << ")";
  } catch (...) {
    s << "...)";
  }
  return s.str();
}

// callOp(index, args[], discardResult) -> result: a handle, an array of them, a number, or undefined.
static Napi::Value CallOp(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  size_t index = static_cast<size_t>(toInt64(info[0], "callOp: index", 0));
  c10::OperatorHandle op = [&] {
    std::lock_guard<std::mutex> lock(registryMutex);
    if (index >= registry.size()) throw Napi::RangeError::New(env, "callOp: unknown op index " + std::to_string(index));
    return registry[index];
  }();
  const c10::FunctionSchema& schema = op.schema();
  // Whatever goes wrong is reported with the call, shapes included; a TypeError or RangeError
  // from converting an argument keeps its kind.
  try {
    Napi::Array args = toArray(info[1], "arguments");
    bool discard = info.Length() > 2 && info[2].ToBoolean().Value();
    const auto& params = schema.arguments();
    if (args.Length() > params.size()) {
      throw Napi::TypeError::New(env, "takes " + std::to_string(params.size()) + " arguments, got " + std::to_string(args.Length()));
    }
    torch::jit::Stack stack;
    stack.reserve(params.size());
    for (size_t i = 0; i < params.size(); i++) {
      const c10::Argument& p = params[i];
      Napi::Value v = i < args.Length() ? args.Get(static_cast<uint32_t>(i)) : env.Undefined();
      if (v.IsUndefined()) {
        if (!p.default_value().has_value()) throw Napi::TypeError::New(env, "missing argument '" + p.name() + "'");
        stack.push_back(*p.default_value());
      } else {
        std::string what = "argument '" + p.name() + "'";
        checkEnumCode(v, p.real_type(), what);
        stack.push_back(toIValue(v, p.type(), p, what));
      }
    }
    op.callBoxed(&stack);
    if (discard || stack.empty()) return env.Undefined();
    if (stack.size() == 1) return fromIValue(env, stack[0]);
    auto out = Napi::Array::New(env, stack.size());
    for (size_t i = 0; i < stack.size(); i++) out.Set(static_cast<uint32_t>(i), fromIValue(env, stack[i]));
    return out;
  } catch (const Napi::TypeError& e) {
    throw Napi::TypeError::New(env, describeCall(schema, info[1]) + ": " + e.Message());
  } catch (const Napi::RangeError& e) {
    throw Napi::RangeError::New(env, describeCall(schema, info[1]) + ": " + e.Message());
  } catch (const Napi::Error& e) {
    throw Napi::Error::New(env, describeCall(schema, info[1]) + ": " + e.Message());
  } catch (const c10::Error& e) {
    throw Napi::Error::New(env, describeCall(schema, info[1]) + ": " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, describeCall(schema, info[1]) + ": " + e.what());
  } catch (...) {
    throw Napi::Error::New(env, describeCall(schema, info[1]) + ": an unknown native error");
  }
}

// schemaOf(index) -> the operator's signature, for error messages and docs.
static Napi::Value SchemaOf(const Napi::CallbackInfo& info) {
  size_t index = static_cast<size_t>(toInt64(info[0], "schemaOf: index", 0));
  std::lock_guard<std::mutex> lock(registryMutex);
  if (index >= registry.size()) throw Napi::RangeError::New(info.Env(), "schemaOf: unknown op index " + std::to_string(index));
  return guarded(info.Env(), "schemaOf", [&]() -> Napi::Value {
    std::ostringstream s;
    s << registry[index].schema();
    return Napi::String::New(info.Env(), s.str());
  });
}

void initOps(Napi::Env env, Napi::Object exports) {
  exports.Set("opHandle", Napi::Function::New(env, OpHandle));
  exports.Set("callOp", Napi::Function::New(env, CallOp));
  exports.Set("schemaOf", Napi::Function::New(env, SchemaOf));
}

}  // namespace byol
