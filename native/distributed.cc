// Data-parallel training's communication: torch.distributed's c10d from the libtorch we link. A
// TCPStore (server or client, under a PrefixStore, as torchrun's agent store needs) rendezvous the
// ranks; a ProcessGroupGloo on it runs all-reduce, all-gather, broadcast and barrier on CPU
// tensors, each blocking or as a handle to wait on with a timeout. Two pieces live here because
// they run inside libtorch's autograd engine, where no JavaScript can: an all-gather whose
// backward sums the gradient over the ranks and keeps this rank's rows (for losses over the global
// batch), and the gradient reducer of data-parallel training (DDP's buckets: gradient hooks copy
// each parameter's gradient into a flat bucket, a full bucket's all-reduce starts at once while
// backward goes on, and a callback at the end of backward waits for them and writes the averages
// back into .grad). c10d::Reducer itself does not compile against Debian's headers (it includes a
// distributed-autograd header the package does not ship).
//
// Gloo's classes exist only under USE_C10D_GLOO, which binding.gyp defines where the Gloo headers
// are (Debian: libgloo-dev, the version libtorch links). Without them the addon still builds and
// every function here throws the reason (distSupport says it without throwing).
#include "holder.h"
#include "same_host_memory.h"
#include <torch/version.h>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>

#if defined(USE_C10D_GLOO) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>) && __has_include(<gloo/config.h>)
#define BYOL_HAS_GLOO 1
#include <torch/csrc/autograd/custom_function.h>
#include <torch/csrc/autograd/engine.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#else
#define BYOL_HAS_GLOO 0
#endif

namespace byol {

#if BYOL_HAS_GLOO

// PyTorch 2.x split the collectives out of ProcessGroup into Backend, which ProcessGroupGloo now
// derives from; its constructor, options and collectives are unchanged.
#if TORCH_VERSION_MAJOR >= 2
using GlooBase = c10d::Backend;
#else
using GlooBase = c10d::ProcessGroup;
#endif

namespace {

const napi_type_tag kStoreTag = {0x3c1d9e0a7b254f61ULL, 0x8e2f6a4d1c0b9e73ULL};
const napi_type_tag kGroupTag = {0x6a0e4c2b9d7f1358ULL, 0xb3d1f5e7092a4c86ULL};
const napi_type_tag kWorkTag = {0x91f3b7d5e2c0a468ULL, 0x2d4b6f8a1c3e5079ULL};
const napi_type_tag kReducerTag = {0x4e8c2a0f6b1d3957ULL, 0xc7a5e3f1d9b08264ULL};

using Clock = std::chrono::steady_clock;
double msSince(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct StoreHolder {
  c10::intrusive_ptr<c10d::Store> store;
};

// With BYOL_ALIGN_TRACE_COLLECTIVES=DIR, every wait for one of a group's collectives appends a
// line to DIR/collectives-<group>-rank<r>.jsonl: the operation, and when the wait began and ended
// on the steady clock, in microseconds (one clock for the processes of a machine). A group's
// collectives come in the same order on every rank, so line k of each rank's file is the same
// collective: bench/results/data-parallel/trace.py lines them up to show which rank waited for
// which, where. Written here because the waits happen inside autograd too (SyncBatchNorm's
// backward, the gradient buckets), where no JavaScript runs.
struct CollectiveTrace {
  std::mutex mutex;
  std::FILE* file;
  ~CollectiveTrace() { std::fclose(file); }
};

// The group's trace file, opened when the group is made (null without the variable).
std::shared_ptr<CollectiveTrace> openTrace(const std::string& name, int64_t rank) {
  const char* dir = std::getenv("BYOL_ALIGN_TRACE_COLLECTIVES");
  if (dir == nullptr || *dir == '\0') return nullptr;
  std::string path = std::string(dir) + "/collectives-" + name + "-rank" + std::to_string(rank) + ".jsonl";
  std::FILE* file = std::fopen(path.c_str(), "a");
  if (file == nullptr)
    throw std::runtime_error("BYOL_ALIGN_TRACE_COLLECTIVES: cannot open " + path + " for appending: " + std::strerror(errno));
  auto trace = std::make_shared<CollectiveTrace>();
  trace->file = file;
  return trace;
}

// A group's blocking all-gathers and all-reduces through shared memory, where all its ranks run
// on one machine (distGroupShareMemory): each rank copies its tensor into its slot of one of two
// alternating buffers, and once every rank has, each reads all slots itself. A buffer is written
// again two collectives later, once every rank has read it.
struct SameHostChannel {
  std::shared_ptr<SameHostMemory> memory;
  int64_t capacityBytes;  // the largest tensor it carries; larger ones go through Gloo
  uint64_t collectives = 0;
  std::mutex mutex;
};

// A group as JS holds it, and as the autograd nodes find it again by id (a node outlives any JS
// handle, and saved_data holds only IValues).
struct Group {
  int64_t id;
  std::string name;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  int rank;
  int size;
  int64_t timeoutMs;
  std::shared_ptr<CollectiveTrace> trace;
  std::shared_ptr<SameHostChannel> channel;  // null: every collective through Gloo
};

std::mutex groupsMutex;
std::unordered_map<int64_t, std::shared_ptr<Group>> groups;
int64_t nextGroupId = 1;

std::shared_ptr<Group> groupById(int64_t id) {
  std::lock_guard<std::mutex> lock(groupsMutex);
  auto found = groups.find(id);
  if (found == groups.end()) throw std::runtime_error("process group " + std::to_string(id) + " was destroyed");
  return found->second;
}

// "allReduce on rank 0 of 2 (group 'main')": every error says which collective failed where.
std::string where(const Group& g, const std::string& op) {
  return op + " on rank " + std::to_string(g.rank) + " of " + std::to_string(g.size) + " (group '" + g.name + "')";
}

// Gloo's own message names the peer's address; with two ranks the peer is the other one. A closed
// connection means a peer exited; a timeout means one is stuck, or gone without closing.
std::string failure(const Group& g, const std::string& op, const std::string& reason) {
  std::string peer = g.size == 2 ? "rank " + std::to_string(1 - g.rank) : "a peer";
  std::string hint;
  if (reason.find("closed") != std::string::npos || reason.find("reset") != std::string::npos ||
      reason.find("Broken pipe") != std::string::npos || reason.find("Connection refused") != std::string::npos) {
    hint = ": " + peer + " closed its connection (its process exited or was killed)";
  } else if (reason.find("imed out") != std::string::npos || reason.find("imeout") != std::string::npos) {
    hint = ": no answer from " + peer + " within the timeout (" + std::to_string(g.timeoutMs) + " ms): it is stuck, or gone";
  }
  return where(g, op) + " failed" + hint + " [" + reason + "]";
}

// A failed collective, its message complete (the entry points pass it to JS as it is).
struct CollectiveError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

long long steadyMicros(Clock::time_point t) {
  return static_cast<long long>(std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count());
}

void traceWait(const Group& g, const std::string& op, Clock::time_point began);

// Waits for a collective, turning any failure into an error naming it; traced (CollectiveTrace)
// from `began`: when this rank launched it (for the gradient buckets, when backward's end began
// waiting for them).
void waitFor(const Group& g, const std::string& op, c10d::Work& work, int64_t timeoutMs, Clock::time_point began) {
  try {
    work.wait(std::chrono::milliseconds(timeoutMs));
  } catch (const c10::Error& e) {
    throw CollectiveError(failure(g, op, e.what_without_backtrace()));
  } catch (const std::exception& e) {
    throw CollectiveError(failure(g, op, e.what()));
  }
  traceWait(g, op, began);
}

// The trace's line for a wait that ended now.
void traceWait(const Group& g, const std::string& op, Clock::time_point began) {
  if (!g.trace) return;
  std::string escaped;
  for (char c : op) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  std::lock_guard<std::mutex> lock(g.trace->mutex);
  std::fprintf(g.trace->file, "{\"op\":\"%s\",\"beganUs\":%lld,\"endedUs\":%lld}\n", escaped.c_str(), steadyMicros(began),
               steadyMicros(Clock::now()));
  std::fflush(g.trace->file);
}

// Runs a collective to completion.
void runBlocking(const Group& g, const std::string& op, const std::function<c10::intrusive_ptr<c10d::Work>()>& launch) {
  auto launched = Clock::now();
  c10::intrusive_ptr<c10d::Work> work;
  try {
    work = launch();
  } catch (const std::exception& e) {
    throw CollectiveError(failure(g, op, e.what()));
  }
  waitFor(g, op, *work, g.timeoutMs, launched);
}

// guarded(), but a CollectiveError's message reaches JS without another prefix.
template <typename Body>
auto distGuarded(Napi::Env env, const std::string& context, Body body) -> decltype(body()) {
  return guarded(env, context, [&]() -> decltype(body()) {
    try {
      return body();
    } catch (const CollectiveError& e) {
      throw Napi::Error::New(env, e.what());
    }
  });
}

// Gloo works on dense contiguous CPU tensors.
void checkCpuDense(const at::Tensor& t, const std::string& op) {
  if (!t.device().is_cpu() || t.is_sparse() || t.is_nested())
    throw std::invalid_argument(op + ": Gloo needs a dense CPU tensor, got " + describe(t));
}

// Whether the group's shared memory carries a collective of this contiguous tensor.
bool viaChannel(const Group& g, const at::Tensor& t) { return g.channel && static_cast<int64_t>(t.nbytes()) <= g.channel->capacityBytes; }

// Every rank's `mine` (contiguous; the same shape and dtype on every rank), as views of their
// slots in the channel, handed to `use` in rank order once all are there.
void exchange(const Group& g, const std::string& op, const at::Tensor& mine, const std::function<void(const std::vector<at::Tensor>&)>& use) {
  auto began = Clock::now();
  SameHostChannel& c = *g.channel;
  std::lock_guard<std::mutex> lock(c.mutex);
  size_t buffer = c.collectives % 2;
  auto round = static_cast<uint32_t>(c.collectives / 2 + 1);
  c.collectives++;
  // 64 bytes a slot hold the size its rank wrote, then the data (64-byte aligned).
  int64_t slotBytes = 64 + c.capacityBytes;
  auto slotOf = [&](int r) { return reinterpret_cast<char*>(c.memory->slot(r)) + static_cast<int64_t>(buffer) * slotBytes; };
  auto bytes = static_cast<int64_t>(mine.nbytes());
  std::string what = where(g, op);
  try {
    if (round > 1) c.memory->waitReduced(buffer, round - 1, g.timeoutMs, what);
    *reinterpret_cast<int64_t*>(slotOf(g.rank)) = bytes;
    std::memcpy(slotOf(g.rank) + 64, mine.data_ptr(), static_cast<size_t>(bytes));
    c.memory->arrive(buffer);
    c.memory->waitArrived(buffer, round, g.timeoutMs, what);
  } catch (const std::runtime_error& e) {
    throw CollectiveError(e.what());
  }
  std::vector<at::Tensor> all;
  std::string mismatch;
  for (int r = 0; r < g.size; r++) {
    int64_t theirs = *reinterpret_cast<const int64_t*>(slotOf(r));
    if (theirs != bytes && mismatch.empty())
      mismatch = what + " failed: rank " + std::to_string(r) + " passed " + std::to_string(theirs) + " bytes, this rank " + std::to_string(bytes);
    all.push_back(at::from_blob(slotOf(r) + 64, mine.sizes(), mine.options()));
  }
  if (mismatch.empty()) use(all);
  c.memory->reduced(buffer);
  if (!mismatch.empty()) throw CollectiveError(mismatch);
  traceWait(g, op, began);
}

// All ranks' tensors stacked along dim 0 (each rank's rows in rank order): [size·n, ...].
at::Tensor allGatherRows(const Group& g, const at::Tensor& input, const std::string& op) {
  checkCpuDense(input, op);
  if (input.dim() == 0) throw std::invalid_argument(op + ": needs a tensor with a first dimension, got " + describe(input));
  at::Tensor source = input.detach().contiguous();
  std::vector<int64_t> shape = source.sizes().vec();
  int64_t rows = shape[0];
  shape[0] = rows * g.size;
  at::Tensor out = at::empty(shape, source.options());
  std::string name = op + "(" + describe(input) + ")";
  if (viaChannel(g, source)) {
    exchange(g, name, source, [&](const std::vector<at::Tensor>& all) {
      for (int r = 0; r < g.size; r++) out.narrow(0, r * rows, rows).copy_(all[r]);
    });
    return out;
  }
  std::vector<std::vector<at::Tensor>> outputs(1);
  for (int r = 0; r < g.size; r++) outputs[0].push_back(out.narrow(0, r * rows, rows));
  std::vector<at::Tensor> inputs{source};
  runBlocking(g, name, [&] { return g.pg->allgather(outputs, inputs); });
  return out;
}

// In place, over the ranks in rank order where the channel carries it (Gloo's sum of two is the same).
void reduceInto(at::Tensor& out, const std::vector<at::Tensor>& all, c10d::ReduceOp op) {
  at::NoGradGuard noGrad;
  for (size_t r = 1; r < all.size(); r++) {
    const at::Tensor& left = r == 1 ? all[0] : out;
    if (op == c10d::ReduceOp::SUM) at::add_out(out, left, all[r]);
    else if (op == c10d::ReduceOp::MAX) at::maximum_out(out, left, all[r]);
    else at::minimum_out(out, left, all[r]);
  }
}

// A blocking all-reduce of a contiguous tensor, in place: through the channel where it carries it.
void allReduceInPlace(const Group& g, at::Tensor& contiguous, c10d::ReduceOp op, const std::string& name) {
  if (viaChannel(g, contiguous)) {
    exchange(g, name, contiguous, [&](const std::vector<at::Tensor>& all) { reduceInto(contiguous, all, op); });
    return;
  }
  std::vector<at::Tensor> tensors{contiguous};
  c10d::AllreduceOptions options;
  options.reduceOp = op;
  runBlocking(g, name, [&] { return g.pg->allreduce(tensors, options); });
}

void allReduceSum(const Group& g, at::Tensor& contiguous, const std::string& op) {
  allReduceInPlace(g, contiguous, c10d::ReduceOp::SUM, op + "(" + describe(contiguous) + ")");
}

// all_gather with a gradient: the output [size·n, ...] feeds a loss that every rank computes, so
// the gradient of the sum of all ranks' losses with respect to this rank's rows is the sum over
// ranks of their gradients' slice of those rows (a reduce-scatter; here an all-reduce, then the
// slice). Data-parallel averaging divides it by the world size again, as for any gradient.
struct AllGatherWithGrad : public torch::autograd::Function<AllGatherWithGrad> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, int64_t groupId) {
    auto g = groupById(groupId);
    ctx->saved_data["group"] = groupId;
    ctx->saved_data["rows"] = input.size(0);
    return allGatherRows(*g, input, "allGather");
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto g = groupById(ctx->saved_data["group"].toInt());
    int64_t rows = ctx->saved_data["rows"].toInt();
    at::Tensor summed = grads[0].contiguous().clone();
    allReduceSum(*g, summed, "allGather's backward (allReduce of the gradient)");
    return {summed.narrow(0, g->rank * rows, rows).clone(), at::Tensor()};
  }
};

// BatchNorm over the global batch (SyncBatchNorm for the CPU, which PyTorch's refuses), on
// batch_norm's own CPU kernels, for several layers at once: each collective costs a wake-up of
// both ranks and a wait for the slower one, so the layers that a forward can normalise together
// (the projectors of every modality, online and target; model.ts) share one all-gather forward
// and one all-reduce backward. Forward: each rank's per-channel mean and biased variance
// (batch_norm_update_stats, BatchNorm's statistics kernel) and count are all-gathered and merged as
// Chan et al.'s parallel variance does; the running averages take the global mean and unbiased
// variance; the normalisation is batch_norm's fused kernel in eval mode, with the global statistics
// as its "running" ones. Backward: that kernel's backward in eval mode, reductions only, gives this
// rank's Σdy and Σdy·x̂; they are all-reduced, and then
//   dx = w·invstd·(dy − mean(dy) − x̂·mean(dy·x̂)) = dy·(w·invstd) + x·k1 + k0,
// the means over all ranks' N rows, k1 and k0 per channel: x·k1 + k0 in one pass (batch_norm in
// eval mode again, with mean 0 and variance 1), then dy·(w·invstd) added in one more. w and b get
// this rank's Σdy·x̂ and Σdy, which data-parallel averaging sums over the ranks. A layer whose input,
// weight and bias need no gradient (a BYOL target's) takes no part in the backward, and its output
// is marked non-differentiable.
struct SyncBatchNormLayer {
  at::Tensor runningMean;  // undefined: not tracked
  at::Tensor runningVar;
  double momentum = 0.1;
  double eps = 1e-5;
};

struct SyncBatchNormFn : public torch::autograd::Function<SyncBatchNormFn> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, at::TensorList inputs, at::TensorList weights,
                                                at::TensorList biases, const std::vector<SyncBatchNormLayer>& layers, int64_t groupId) {
    auto g = groupById(groupId);
    size_t count = inputs.size();
    std::vector<at::Tensor> xs, locals;
    std::string what = "SyncBatchNorm(";
    for (size_t k = 0; k < count; k++) {
      at::Tensor x = inputs[k].contiguous();
      auto [mean, variance] = at::batch_norm_update_stats(x, c10::nullopt, c10::nullopt, 0.0);
      double rows = static_cast<double>(x.numel() / x.size(1));
      locals.push_back(at::cat({mean, variance, at::full({1}, rows, mean.options())}));
      what += (k > 0 ? ", " : "") + describe(inputs[k]);
      xs.push_back(x);
    }
    what += ")";
    at::Tensor local = at::cat(locals).view({1, -1});
    at::Tensor all = allGatherRows(*g, local, what);
    std::vector<at::Tensor> outputs, saved;
    std::vector<double> totals;
    std::string participates;
    int64_t offset = 0;
    for (size_t k = 0; k < count; k++) {
      const at::Tensor& x = xs[k];
      const SyncBatchNormLayer& layer = layers[k];
      int64_t channels = x.size(1);
      at::Tensor means = all.narrow(1, offset, channels);
      at::Tensor variances = all.narrow(1, offset + channels, channels);
      at::Tensor counts = all.narrow(1, offset + 2 * channels, 1);
      offset += 2 * channels + 1;
      double total = counts.sum().item<double>();
      if (total <= 1)
        throw std::invalid_argument("SyncBatchNorm(" + std::to_string(channels) +
                                    "): training needs more than 1 value per channel over all ranks, got " + std::to_string(total));
      at::Tensor globalMean = (means * counts).sum(0) / total;
      at::Tensor globalVariance = ((variances + (means - globalMean).square()) * counts).sum(0) / total;
      if (layer.runningMean.defined()) layer.runningMean.mul_(1 - layer.momentum).add_(globalMean * layer.momentum);
      if (layer.runningVar.defined()) layer.runningVar.mul_(1 - layer.momentum).add_(globalVariance * (total / (total - 1) * layer.momentum));
      at::Tensor y =
          at::batch_norm(x, weights[k], biases[k], globalMean, globalVariance, /*training=*/false, 0.0, layer.eps, /*cudnn_enabled=*/false);
      bool needsGrad = inputs[k].requires_grad() || weights[k].requires_grad() || biases[k].requires_grad();
      if (!needsGrad) ctx->mark_non_differentiable({y});
      participates += needsGrad ? '1' : '0';
      saved.insert(saved.end(), {needsGrad ? x : at::Tensor(), weights[k], globalMean, globalVariance});
      totals.push_back(total);
      outputs.push_back(y);
    }
    ctx->save_for_backward(saved);
    std::vector<double> eps;
    for (const auto& layer : layers) eps.push_back(layer.eps);
    ctx->saved_data["eps"] = eps;
    ctx->saved_data["totals"] = totals;
    ctx->saved_data["participates"] = participates;
    ctx->saved_data["group"] = groupId;
    return outputs;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    auto eps = ctx->saved_data["eps"].toDoubleVector();
    auto totals = ctx->saved_data["totals"].toDoubleVector();
    std::string participates = ctx->saved_data["participates"].toStringRef();
    auto g = groupById(ctx->saved_data["group"].toInt());
    size_t count = totals.size();
    // Every rank all-reduces the same layers' sums in the same order: those that need a gradient
    // (the same on every rank, as every rank runs the same layers), with zeros for a gradient that
    // did not arrive.
    std::vector<at::Tensor> local, dys;
    for (size_t k = 0; k < count; k++) {
      if (participates[k] != '1') continue;
      const at::Tensor& x = saved[4 * k];
      const at::Tensor& w = saved[4 * k + 1];
      at::Tensor dy = grads[k].defined() ? grads[k].contiguous() : at::zeros_like(x);
      auto [unused, sumDyXhat, sumDy] = at::native_batch_norm_backward(dy, x, w, saved[4 * k + 2], saved[4 * k + 3], c10::nullopt, c10::nullopt,
                                                                       /*train=*/false, eps[k], {false, true, true});
      local.insert(local.end(), {sumDy, sumDyXhat});
      dys.push_back(dy);
    }
    torch::autograd::variable_list inputGrads(count), weightGrads(count), biasGrads(count);
    if (!local.empty()) {
      at::Tensor sums = at::cat(local);
      allReduceSum(*g, sums, "SyncBatchNorm's backward (allReduce of Σdy and Σdy·x̂)");
      int64_t offset = 0;
      size_t j = 0;
      for (size_t k = 0; k < count; k++) {
        if (participates[k] != '1') continue;
        const at::Tensor& x = saved[4 * k];
        const at::Tensor& globalMean = saved[4 * k + 2];
        const at::Tensor& globalVariance = saved[4 * k + 3];
        int64_t channels = x.size(1);
        at::Tensor meanDy = sums.narrow(0, offset, channels) / totals[k];
        at::Tensor meanDyXhat = sums.narrow(0, offset + channels, channels) / totals[k];
        const at::Tensor& w = saved[4 * k + 1];
        const at::Tensor& dy = dys[j];
        at::Tensor invstd = (globalVariance + eps[k]).rsqrt();
        at::Tensor k1 = -w * invstd * invstd * meanDyXhat;
        at::Tensor k0 = -w * invstd * meanDy - k1 * globalMean;
        std::vector<int64_t> shape(x.dim(), 1);
        shape[1] = channels;
        at::Tensor gradInput = at::batch_norm(x, k1, k0, at::zeros_like(globalMean), at::full_like(globalVariance, 1 - eps[k]),
                                              /*training=*/false, 0.0, eps[k], /*cudnn_enabled=*/false);
        gradInput.addcmul_(dy, (w * invstd).view(shape));
        inputGrads[k] = gradInput;
        // This rank's share of Σdy·x̂ and Σdy (the sums before the all-reduce).
        if (ctx->needs_input_grad(count + k)) weightGrads[k] = local[2 * j + 1];
        if (ctx->needs_input_grad(2 * count + k)) biasGrads[k] = local[2 * j];
        offset += 2 * channels;
        j++;
      }
    }
    // One gradient per input of forward, in its order: the inputs, weights, biases, then the
    // layers' settings and the group (none).
    torch::autograd::variable_list out;
    out.insert(out.end(), inputGrads.begin(), inputGrads.end());
    out.insert(out.end(), weightGrads.begin(), weightGrads.end());
    out.insert(out.end(), biasGrads.begin(), biasGrads.end());
    out.insert(out.end(), {at::Tensor(), at::Tensor()});
    return out;
  }
};

// An async collective as JS holds it: the work, and what wait() does after it (copy the result
// into a non-contiguous target, divide for an average).
struct PendingWork {
  std::shared_ptr<Group> group;
  std::string op;
  c10::intrusive_ptr<c10d::Work> work;
  at::Tensor buffer;
  at::Tensor target;  // defined when buffer is a contiguous copy of it
  double divideBy = 1;
  bool finished = false;
  Clock::time_point launched = Clock::now();  // made just before the collective is launched
};

// The reduced buffer made the result: divided for an average, copied into a non-contiguous target.
void completeResult(PendingWork& w) {
  w.finished = true;
  at::NoGradGuard noGrad;
  if (w.divideBy != 1) w.buffer.div_(w.divideBy);
  if (w.target.defined()) w.target.copy_(w.buffer);
}

void finishWork(PendingWork& w, int64_t timeoutMs) {
  if (w.finished) return;
  waitFor(*w.group, w.op, *w.work, timeoutMs, w.launched);
  completeResult(w);
}

// Gradient averaging in buckets, overlapped with backward (PyTorch DDP's design, without its
// Reducer class). Parameters are bucketed in reverse order, the order backward reaches them; a
// bucket's all-reduce starts when its last gradient has arrived and every earlier bucket has
// started (all ranks must issue collectives in one order). Each bucket ends with one flag per
// parameter, 1 where this rank had its gradient: a parameter no rank used keeps no gradient, as
// it would in one process; one that some ranks used gets the average with zeros from the others.
//
// Ranks on one machine can average through shared memory instead of Gloo (SameHostMemory): a
// bucket's flat tensor is then this rank's slot in the segment, its launch only says it has
// arrived, and the rank sums its share of the bucket over all ranks' slots into the shared result
// (in rank order, as Gloo's sum of two) on its own thread, inside backward's hooks as soon as every
// rank has arrived, or at backward's end. No helper thread wakes, and nothing crosses a socket.
struct GradReducer : public std::enable_shared_from_this<GradReducer> {
  struct Bucket {
    std::vector<size_t> members;  // indices into params
    std::vector<int64_t> offsets;
    int64_t dataNumel = 0;
    at::Tensor flat;  // data, then one flag per member
    size_t pending = 0;
    c10::intrusive_ptr<c10d::Work> work;
    bool launched = false;
    int64_t sharedOffset = 0;  // where flat starts in each shared slot, in floats
    bool reducedHere = false;  // this rank's share of the shared sum is done
  };

  std::shared_ptr<SameHostMemory> shared;  // null: Gloo
  int64_t sharedFloats = 0;                // all buckets' flat tensors end to end: a shared slot's size
  uint32_t round = 0;                      // the shared counters' round of this backward
  std::shared_ptr<Group> group;
  std::vector<at::Tensor> params;
  std::vector<unsigned> hookIds;
  std::vector<Bucket> buckets;
  std::vector<std::pair<size_t, size_t>> slotOf;  // param -> (bucket, member)
  std::vector<bool> reported;
  size_t nextToLaunch = 0;
  bool inBackward = false;
  bool enabled = true;
  std::mutex mutex;
  // What the last backward's averaging cost: the wait at its end (what did not hide behind
  // backward), and how many buckets had started before backward ended.
  double lastWaitMs = 0;
  int64_t lastLaunchedEarly = 0;
  int64_t backwards = 0;

  void build(int64_t bucketBytes) {
    slotOf.resize(params.size());
    reported.assign(params.size(), false);
    for (size_t k = params.size(); k-- > 0;) {
      const at::Tensor& p = params[k];
      int64_t bytes = p.numel() * static_cast<int64_t>(p.element_size());
      bool fresh = buckets.empty();
      if (!fresh) {
        const Bucket& last = buckets.back();
        const at::Tensor& first = params[last.members.front()];
        fresh = first.scalar_type() != p.scalar_type() || last.dataNumel * static_cast<int64_t>(p.element_size()) + bytes > bucketBytes;
      }
      if (fresh) buckets.emplace_back();
      Bucket& b = buckets.back();
      slotOf[k] = {buckets.size() - 1, b.members.size()};
      b.members.push_back(k);
      b.offsets.push_back(b.dataNumel);
      b.dataNumel += p.numel();
    }
    for (Bucket& b : buckets) {
      b.sharedOffset = sharedFloats;
      sharedFloats += b.dataNumel + static_cast<int64_t>(b.members.size());
    }
    for (Bucket& b : buckets) {
      const at::Tensor& first = params[b.members.front()];
      b.flat = at::zeros({b.dataNumel + static_cast<int64_t>(b.members.size())}, first.options().requires_grad(false));
    }
  }

  // Buckets in the shared segment `name` (rank 0 makes it), where every parameter is float32.
  void shareMemory(const std::string& name, bool create) {
    for (const at::Tensor& p : params)
      if (p.scalar_type() != at::kFloat) throw std::runtime_error("shared-memory gradients carry float32 parameters only, got " + describe(p));
    shared = SameHostMemory::open(name, create, group->rank, group->size, sharedFloats, buckets.size(), true);
    for (Bucket& b : buckets) b.flat = sharedView(shared->slot(group->rank), b);
  }

  at::Tensor sharedView(float* slot, const Bucket& b) const {
    return at::from_blob(slot + b.sharedOffset, {b.flat.numel()}, at::TensorOptions().dtype(at::kFloat));
  }

  // This rank's share of bucket bi summed over the ranks' slots into the shared result.
  void reduceShare(size_t bi) {
    Bucket& b = buckets[bi];
    int64_t n = b.flat.numel();
    int64_t lo = n * group->rank / group->size;
    int64_t len = n * (group->rank + 1) / group->size - lo;
    if (len > 0) {
      at::Tensor out = sharedView(shared->result(), b).narrow(0, lo, len);
      at::add_out(out, sharedView(shared->slot(0), b).narrow(0, lo, len), sharedView(shared->slot(1), b).narrow(0, lo, len));
      for (int r = 2; r < group->size; r++) out.add_(sharedView(shared->slot(r), b).narrow(0, lo, len));
    }
    b.reducedHere = true;
    shared->reduced(bi);
  }

  // Reduces every launched bucket that all ranks have reached, in order.
  void reduceArrived() {
    for (size_t bi = 0; bi < nextToLaunch; bi++) {
      if (!buckets[bi].reducedHere && shared->allArrived(bi, round)) reduceShare(bi);
    }
  }

  void startBackward() {
    inBackward = true;
    nextToLaunch = 0;
    round++;
    std::fill(reported.begin(), reported.end(), false);
    for (Bucket& b : buckets) {
      b.pending = b.members.size();
      b.launched = false;
      b.reducedHere = false;
      b.work.reset();
    }
    std::weak_ptr<GradReducer> self = shared_from_this();
    torch::autograd::Engine::get_default_engine().queue_callback([self] {
      if (auto r = self.lock()) r->finishBackward();
    });
  }

  void onGradient(size_t k, const at::Tensor& grad) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!enabled) return;
    if (!inBackward) startBackward();
    if (reported[k] || !grad.defined()) return;
    auto [bi, mi] = slotOf[k];
    Bucket& b = buckets[bi];
    at::NoGradGuard noGrad;
    b.flat.narrow(0, b.offsets[mi], params[k].numel()).copy_(grad.reshape(-1));
    b.flat[b.dataNumel + static_cast<int64_t>(mi)].fill_(1);
    reported[k] = true;
    b.pending--;
    while (nextToLaunch < buckets.size() && buckets[nextToLaunch].pending == 0) launch(nextToLaunch++);
    if (shared) reduceArrived();
  }

  void launch(size_t bi) {
    Bucket& b = buckets[bi];
    b.launched = true;
    if (shared) return shared->arrive(bi);
    std::vector<at::Tensor> tensors{b.flat};
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    try {
      b.work = group->pg->allreduce(tensors, options);
    } catch (const std::exception& e) {
      throw CollectiveError(failure(*group, bucketName(bi), e.what()));
    }
  }

  std::string bucketName(size_t bi) const {
    const Bucket& b = buckets[bi];
    return "gradient allReduce (bucket " + std::to_string(bi + 1) + " of " + std::to_string(buckets.size()) + ", " +
           std::to_string(b.members.size()) + " parameters, " + std::to_string(b.dataNumel) + " values)";
  }

  // The end of backward (the engine's final callback, on the thread that called backward):
  // buckets still waiting for a gradient some parameter never got start now, with zeros there.
  void finishBackward() {
    std::lock_guard<std::mutex> lock(mutex);
    inBackward = false;
    backwards++;
    at::NoGradGuard noGrad;
    at::Tensor worldSize = at::scalar_tensor(static_cast<double>(group->size), at::kFloat);
    lastLaunchedEarly = static_cast<int64_t>(nextToLaunch);
    auto waitStart = Clock::now();
    for (size_t bi = nextToLaunch; bi < buckets.size(); bi++) {
      Bucket& b = buckets[bi];
      for (size_t mi = 0; mi < b.members.size(); mi++) {
        size_t k = b.members[mi];
        if (reported[k]) continue;
        b.flat.narrow(0, b.offsets[mi], params[k].numel()).zero_();
        b.flat[b.dataNumel + static_cast<int64_t>(mi)].fill_(0);
      }
      launch(bi);
    }
    nextToLaunch = buckets.size();
    if (shared) {
      waitShared();
    } else {
      for (size_t bi = 0; bi < buckets.size(); bi++) waitFor(*group, bucketName(bi), *buckets[bi].work, group->timeoutMs, Clock::now());
    }
    lastWaitMs = msSince(waitStart);
    for (Bucket& b : buckets) {
      // Gloo summed into flat itself; the shared sum is in the result, where other ranks read it too.
      at::Tensor sum = shared ? sharedView(shared->result(), b) : b.flat;
      at::Tensor usedBy = sum.narrow(0, b.dataNumel, static_cast<int64_t>(b.members.size()));
      auto used = usedBy.to(at::kFloat).contiguous();
      const float* count = used.data_ptr<float>();
      for (size_t mi = 0; mi < b.members.size(); mi++) {
        if (count[mi] == 0) continue;
        at::Tensor& p = params[b.members[mi]];
        at::Tensor sumOverRanks = sum.narrow(0, b.offsets[mi], p.numel()).view(p.sizes());
        at::Tensor& grad = p.mutable_grad();
        if (grad.defined()) at::div_out(grad, sumOverRanks, worldSize);
        else grad = at::div(sumOverRanks, worldSize);
      }
    }
  }

  // Every bucket's sum complete: this rank's shares of those not yet reduced, then the others'.
  void waitShared() {
    for (size_t bi = 0; bi < buckets.size(); bi++) {
      if (buckets[bi].reducedHere) continue;
      shared->waitArrived(bi, round, group->timeoutMs, where(*group, bucketName(bi)));
      reduceShare(bi);
    }
    for (size_t bi = 0; bi < buckets.size(); bi++) shared->waitReduced(bi, round, group->timeoutMs, where(*group, bucketName(bi)));
  }

  void removeHooks() {
    for (size_t k = 0; k < params.size() && k < hookIds.size(); k++) params[k].remove_hook(hookIds[k]);
    hookIds.clear();
  }
};

struct ReducerHolder {
  std::shared_ptr<GradReducer> reducer;
};

template <typename T>
Napi::Value wrapOwned(Napi::Env env, T* value, const napi_type_tag& tag) {
  auto handle = Napi::External<T>::New(env, value, [](Napi::BasicEnv, T* p) { delete p; });
  handle.TypeTag(&tag);
  return handle;
}

template <typename T>
T* ownedOf(const Napi::Value& v, const napi_type_tag& tag, const std::string& what, const char* kind) {
  if (!v.IsExternal() || !v.As<Napi::External<T>>().CheckTypeTag(&tag))
    throw Napi::TypeError::New(v.Env(), what + " is not a " + kind + " (got " + describeValue(v) + ")");
  return v.As<Napi::External<T>>().Data();
}

std::shared_ptr<Group> groupOf(const Napi::Value& v, const std::string& what) {
  int64_t id = *ownedOf<int64_t>(v, kGroupTag, what, "process group");
  return groupById(id);
}

int64_t timeoutOf(const Napi::Value& v, const std::string& what) { return toInt64(v, what, 1, int64_t{1} << 40); }

}  // namespace

// distStore(host, port, isServer, worldSize | null, timeoutMs, prefix) -> [store handle, port].
// The server (port 0: any free port) waits for worldSize ranks to connect; a client connects,
// retrying until the timeout. worldSize null joins a store someone else hosts and counts (torchrun's
// agent store). A non-empty prefix wraps it in a PrefixStore.
static Napi::Value DistStore(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string host = toString(info[0], "distStore: host");
  int64_t port = toInt64(info[1], "distStore: port", 0, 65535);
  bool isServer = toBool(info[2], "distStore: isServer");
  c10::optional<size_t> workers;
  if (!info[3].IsNull() && !info[3].IsUndefined()) workers = static_cast<size_t>(toInt64(info[3], "distStore: worldSize", 1, 1 << 20));
  int64_t timeoutMs = timeoutOf(info[4], "distStore: timeoutMs");
  std::string prefix = info[5].IsUndefined() ? "" : toString(info[5], "distStore: prefix");
  std::string role = isServer ? "a TCPStore server on port " + std::to_string(port) : "the TCPStore at " + host + ":" + std::to_string(port);
  return guarded(env, "distStore: " + role, [&]() -> Napi::Value {
    c10d::TCPStoreOptions options;
    options.port = static_cast<uint16_t>(port);
    options.isServer = isServer;
    options.numWorkers = workers;
    // Every rank counts itself in (a client's part of waitForWorkers); the server then waits for
    // all of them. A client that does not count in leaves the server waiting out the timeout.
    options.waitWorkers = workers.has_value();
    options.timeout = std::chrono::milliseconds(timeoutMs);
    auto tcp = c10::make_intrusive<c10d::TCPStore>(host, options);
    auto result = Napi::Array::New(env, 2);
    c10::intrusive_ptr<c10d::Store> store = tcp;
    if (!prefix.empty()) store = c10::make_intrusive<c10d::PrefixStore>(prefix, store);
    result.Set(0u, wrapOwned(env, new StoreHolder{store}, kStoreTag));
    result.Set(1u, Napi::Number::New(env, tcp->getPort()));
    return result;
  });
}

static StoreHolder* storeOf(const Napi::Value& v, const std::string& what) { return ownedOf<StoreHolder>(v, kStoreTag, what, "store"); }

// distStoreSet(store, key, value: string); distStoreGet(store, key) -> string (waits for the key up
// to the store's timeout); distStoreAdd(store, key, delta) -> the new value.
static Napi::Value DistStoreSet(const Napi::CallbackInfo& info) {
  StoreHolder* s = storeOf(info[0], "distStoreSet: store");
  std::string key = toString(info[1], "distStoreSet: key");
  std::string value = toString(info[2], "distStoreSet: value");
  guarded(info.Env(), "store set '" + key + "'", [&] { s->store->set(key, std::vector<uint8_t>(value.begin(), value.end())); });
  return info.Env().Undefined();
}

static Napi::Value DistStoreGet(const Napi::CallbackInfo& info) {
  StoreHolder* s = storeOf(info[0], "distStoreGet: store");
  std::string key = toString(info[1], "distStoreGet: key");
  return guarded(info.Env(), "store get '" + key + "'", [&]() -> Napi::Value {
    auto bytes = s->store->get(key);
    return Napi::String::New(info.Env(), std::string(bytes.begin(), bytes.end()));
  });
}

static Napi::Value DistStoreAdd(const Napi::CallbackInfo& info) {
  StoreHolder* s = storeOf(info[0], "distStoreAdd: store");
  std::string key = toString(info[1], "distStoreAdd: key");
  int64_t delta = toInt64(info[2], "distStoreAdd: delta");
  return guarded(info.Env(), "store add '" + key + "'", [&]() -> Napi::Value {
    return Napi::Number::New(info.Env(), static_cast<double>(s->store->add(key, delta)));
  });
}

// distGroup(store, rank, size, timeoutMs, name, interface, hostname, threads) -> a group handle.
// Gloo binds to `interface` (e.g. eth0) if given, else to `hostname`'s address if given, else to
// the address this machine's hostname resolves to (loopback when it resolves to none). Blocks
// until every rank has joined, or the timeout.
static Napi::Value DistGroup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  StoreHolder* s = storeOf(info[0], "distGroup: store");
  int64_t size = toInt64(info[2], "distGroup: size", 1, 1 << 20);
  int64_t rank = toInt64(info[1], "distGroup: rank", 0, size - 1);
  int64_t timeoutMs = timeoutOf(info[3], "distGroup: timeoutMs");
  std::string name = toString(info[4], "distGroup: name");
  std::string iface = info[5].IsUndefined() || info[5].IsNull() ? "" : toString(info[5], "distGroup: interface");
  std::string hostname = info[6].IsUndefined() || info[6].IsNull() ? "" : toString(info[6], "distGroup: hostname");
  int64_t threads = info[7].IsUndefined() ? 2 : toInt64(info[7], "distGroup: threads", 1, 64);
  std::string context = "distGroup '" + name + "' (rank " + std::to_string(rank) + " of " + std::to_string(size) + ")";
  return guarded(env, context, [&]() -> Napi::Value {
    auto options = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeoutMs));
    if (!iface.empty()) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    else if (!hostname.empty()) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(hostname));
    else options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    options->threads = static_cast<int>(threads);
    // Each group keys its rendezvous under its own name, so several groups share one store.
    auto scoped = c10::make_intrusive<c10d::PrefixStore>("byol-align/" + name, s->store);
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(scoped, static_cast<int>(rank), static_cast<int>(size), options);
    auto group = std::make_shared<Group>(Group{0, name, pg, static_cast<int>(rank), static_cast<int>(size), timeoutMs, openTrace(name, rank), nullptr});
    {
      std::lock_guard<std::mutex> lock(groupsMutex);
      group->id = nextGroupId++;
      groups[group->id] = group;
    }
    return wrapOwned(env, new int64_t(group->id), kGroupTag);
  });
}

// distDestroyGroup(group): ends its Gloo threads and connections.
static Napi::Value DistDestroyGroup(const Napi::CallbackInfo& info) {
  int64_t id = *ownedOf<int64_t>(info[0], kGroupTag, "distDestroyGroup: group", "process group");
  std::shared_ptr<Group> dropped;
  {
    std::lock_guard<std::mutex> lock(groupsMutex);
    auto found = groups.find(id);
    if (found != groups.end()) {
      dropped = found->second;
      groups.erase(found);
    }
  }
  return info.Env().Undefined();
}

static Napi::Value WrapWork(Napi::Env env, PendingWork* w) { return wrapOwned(env, w, kWorkTag); }

// distAllReduce(group, tensor, op: 'sum' | 'avg' | 'max' | 'min', async) in place; with async, a
// work handle whose wait() completes it (Gloo has no AVG: a sum divided at the end).
static Napi::Value DistAllReduce(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = groupOf(info[0], "allReduce: group");
  const at::Tensor& t = tensorOf(info[1], "allReduce: tensor");
  std::string op = toString(info[2], "allReduce: op");
  bool async = toBool(info[3], "allReduce: async");
  std::string name = "allReduce(" + describe(t) + ", '" + op + "')";
  return distGuarded(env, where(*g, name), [&]() -> Napi::Value {
    checkCpuDense(t, "allReduce");
    c10d::AllreduceOptions options;
    if (op == "sum" || op == "avg") options.reduceOp = c10d::ReduceOp::SUM;
    else if (op == "max") options.reduceOp = c10d::ReduceOp::MAX;
    else if (op == "min") options.reduceOp = c10d::ReduceOp::MIN;
    else throw Napi::RangeError::New(env, "allReduce: op must be 'sum', 'avg', 'max' or 'min', got '" + op + "'");
    auto* w = new PendingWork{g, name, {}, {}, {}, op == "avg" ? static_cast<double>(g->size) : 1.0, false};
    std::unique_ptr<PendingWork> owned(w);
    w->buffer = t.is_contiguous() ? t.detach() : t.detach().contiguous();
    if (!t.is_contiguous()) w->target = t.detach();
    if (!async && viaChannel(*g, w->buffer)) {
      allReduceInPlace(*g, w->buffer, options.reduceOp, name);
      completeResult(*w);
      return env.Undefined();
    }
    std::vector<at::Tensor> tensors{w->buffer};
    w->work = g->pg->allreduce(tensors, options);
    if (!async) {
      finishWork(*w, g->timeoutMs);
      return env.Undefined();
    }
    return WrapWork(env, owned.release());
  });
}

// distBroadcast(group, tensor, root, async) in place.
static Napi::Value DistBroadcast(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = groupOf(info[0], "broadcast: group");
  const at::Tensor& t = tensorOf(info[1], "broadcast: tensor");
  int64_t root = toInt64(info[2], "broadcast: root", 0, g->size - 1);
  bool async = toBool(info[3], "broadcast: async");
  std::string name = "broadcast(" + describe(t) + ", from rank " + std::to_string(root) + ")";
  return distGuarded(env, where(*g, name), [&]() -> Napi::Value {
    checkCpuDense(t, "broadcast");
    auto owned = std::make_unique<PendingWork>(PendingWork{g, name, {}, {}, {}, 1.0, false});
    owned->buffer = t.is_contiguous() ? t.detach() : t.detach().contiguous();
    if (!t.is_contiguous()) owned->target = t.detach();
    std::vector<at::Tensor> tensors{owned->buffer};
    c10d::BroadcastOptions options;
    options.rootRank = static_cast<int>(root);
    owned->work = g->pg->broadcast(tensors, options);
    if (!async) {
      finishWork(*owned, g->timeoutMs);
      return env.Undefined();
    }
    return WrapWork(env, owned.release());
  });
}

// distWait(work, timeoutMs): completes an async collective; throws when it failed or timed out.
static Napi::Value DistWait(const Napi::CallbackInfo& info) {
  auto* w = ownedOf<PendingWork>(info[0], kWorkTag, "wait: work", "collective's work handle");
  int64_t timeoutMs = info[1].IsUndefined() ? w->group->timeoutMs : timeoutOf(info[1], "wait: timeoutMs");
  distGuarded(info.Env(), "wait", [&] { finishWork(*w, timeoutMs); });
  return info.Env().Undefined();
}

static Napi::Value DistIsCompleted(const Napi::CallbackInfo& info) {
  auto* w = ownedOf<PendingWork>(info[0], kWorkTag, "isCompleted: work", "collective's work handle");
  return guarded(info.Env(), "isCompleted", [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), w->finished || w->work->isCompleted());
  });
}

// distAllGather(group, tensor, withGrad) -> [size·n, ...]: every rank's rows in rank order; with
// withGrad, the result's gradient flows back to this rank's rows (AllGatherWithGrad).
static Napi::Value DistAllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = groupOf(info[0], "allGather: group");
  const at::Tensor& t = tensorOf(info[1], "allGather: tensor");
  bool withGrad = toBool(info[2], "allGather: withGrad");
  return distGuarded(env, where(*g, "allGather(" + describe(t) + ")"), [&]() -> Napi::Value {
    if (withGrad) return wrapTensor(env, AllGatherWithGrad::apply(t, g->id));
    return wrapTensor(env, allGatherRows(*g, t, "allGather"));
  });
}

// distSyncBatchNorm(group, layers) -> one output per layer: each layer { input, weight | null,
// bias | null, runningMean | null, runningVar | null, momentum, eps } normalised with all ranks'
// statistics, all of them in one collective (SyncBatchNormFn).
static Napi::Value DistSyncBatchNorm(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = groupOf(info[0], "syncBatchNorm: group");
  Napi::Array list = toArray(info[1], "syncBatchNorm: layers");
  std::vector<at::Tensor> inputs, weights, biases;
  std::vector<SyncBatchNormLayer> layers;
  std::string shapes;
  for (uint32_t i = 0; i < list.Length(); i++) {
    std::string field = "syncBatchNorm: layers[" + std::to_string(i) + "]";
    if (!list.Get(i).IsObject()) throw Napi::TypeError::New(env, field + " must be an object");
    Napi::Object layer = list.Get(i).As<Napi::Object>();
    auto optional = [&](const char* key) -> at::Tensor {
      Napi::Value v = layer.Get(key);
      return v.IsNull() || v.IsUndefined() ? at::Tensor() : tensorOf(v, field + "." + key);
    };
    const at::Tensor& input = tensorOf(layer.Get("input"), field + ".input");
    inputs.push_back(input);
    // The autograd Function's tensor lists take no undefined tensors: no weight is a weight of
    // ones and no bias a bias of zeros, neither needing a gradient.
    at::Tensor weight = optional("weight"), bias = optional("bias");
    weights.push_back(weight.defined() ? weight : at::ones({input.dim() < 2 ? 1 : input.size(1)}, input.options()));
    biases.push_back(bias.defined() ? bias : at::zeros({input.dim() < 2 ? 1 : input.size(1)}, input.options()));
    layers.push_back({optional("runningMean"), optional("runningVar"), toDouble(layer.Get("momentum"), field + ".momentum"),
                      toDouble(layer.Get("eps"), field + ".eps")});
    shapes += (i > 0 ? ", " : "") + describe(input);
  }
  return distGuarded(env, where(*g, "syncBatchNorm(" + shapes + ")"), [&]() -> Napi::Value {
    if (inputs.empty()) throw Napi::RangeError::New(env, "syncBatchNorm: needs at least one layer");
    for (size_t i = 0; i < inputs.size(); i++) {
      checkCpuDense(inputs[i], "syncBatchNorm");
      if (inputs[i].dim() < 2)
        throw Napi::RangeError::New(env, "syncBatchNorm: layers[" + std::to_string(i) + "].input must be [N, C, ...], got " + describe(inputs[i]));
    }
    // apply() runs forward without recording, so the running averages' update is no part of the graph.
    torch::autograd::variable_list outputs = SyncBatchNormFn::apply(at::TensorList(inputs), at::TensorList(weights), at::TensorList(biases), layers, g->id);
    Napi::Array result = Napi::Array::New(env, outputs.size());
    for (uint32_t i = 0; i < outputs.size(); i++) result.Set(i, wrapTensor(env, outputs[i]));
    return result;
  });
}

static Napi::Value DistBarrier(const Napi::CallbackInfo& info) {
  auto g = groupOf(info[0], "barrier: group");
  distGuarded(info.Env(), where(*g, "barrier"), [&] {
    runBlocking(*g, "barrier", [&] { return g->pg->barrier(); });
  });
  return info.Env().Undefined();
}

// distReducer(group, params, bucketBytes[, sharedName, create]) -> a reducer handle: hooks on every
// parameter that requires a gradient; from then on each backward through them averages their
// gradients, through Gloo, or with sharedName through that shared-memory segment (rank 0 creates
// it; the others open it once it exists; distUnlinkShared removes the name once all have).
static Napi::Value DistReducer(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto g = groupOf(info[0], "GradReducer: group");
  Napi::Array list = toArray(info[1], "GradReducer: params");
  int64_t bucketBytes = toInt64(info[2], "GradReducer: bucketBytes", 1);
  auto reducer = std::make_shared<GradReducer>();
  reducer->group = g;
  for (uint32_t i = 0; i < list.Length(); i++) {
    const at::Tensor& p = tensorOf(list.Get(i), "GradReducer: params[" + std::to_string(i) + "]");
    if (!p.requires_grad() || !p.is_leaf())
      throw Napi::TypeError::New(env, "GradReducer: params[" + std::to_string(i) + "] " + describe(p) + " is not a leaf that requires grad");
    if (!p.device().is_cpu()) throw Napi::TypeError::New(env, "GradReducer: Gloo averages CPU gradients; params[" + std::to_string(i) + "] is " + describe(p));
    reducer->params.push_back(p);
  }
  std::string sharedName = info.Length() > 3 && !info[3].IsUndefined() ? toString(info[3], "GradReducer: sharedName") : "";
  bool create = !sharedName.empty() && toBool(info[4], "GradReducer: create");
  return guarded(env, "GradReducer", [&]() -> Napi::Value {
    reducer->build(bucketBytes);
    if (!sharedName.empty()) reducer->shareMemory(sharedName, create);
    std::weak_ptr<GradReducer> weak = reducer;
    for (size_t k = 0; k < reducer->params.size(); k++) {
      std::function<void(at::Tensor)> hook = [weak, k](const at::Tensor& grad) {
        if (auto r = weak.lock()) r->onGradient(k, grad);
      };
      reducer->hookIds.push_back(reducer->params[k].register_hook(hook));
    }
    return wrapOwned(env, new ReducerHolder{reducer}, kReducerTag);
  });
}

static GradReducer& reducerOf(const Napi::Value& v, const std::string& what) {
  auto* holder = ownedOf<ReducerHolder>(v, kReducerTag, what, "gradient reducer");
  if (!holder->reducer) throw Napi::Error::New(v.Env(), what + ": the reducer was removed");
  return *holder->reducer;
}

// distGroupShareMemory(group, name, create, capacityBytes): from now on the group's blocking
// all-gathers and all-reduces of up to capacityBytes go through that shared-memory segment (rank 0
// creates it; the others open it once it exists; distUnlinkShared removes the name once all have).
// An empty name: through Gloo again.
static Napi::Value DistGroupShareMemory(const Napi::CallbackInfo& info) {
  auto g = groupOf(info[0], "distGroupShareMemory: group");
  std::string name = toString(info[1], "distGroupShareMemory: name");
  if (name.empty()) {
    g->channel.reset();
    return info.Env().Undefined();
  }
  bool create = toBool(info[2], "distGroupShareMemory: create");
  int64_t capacity = toInt64(info[3], "distGroupShareMemory: capacityBytes", 64, int64_t{1} << 32) / 64 * 64;
  guarded(info.Env(), where(*g, "sharing memory"), [&] {
    auto channel = std::make_shared<SameHostChannel>();
    channel->capacityBytes = capacity;
    channel->memory = SameHostMemory::open(name, create, g->rank, g->size, 2 * (64 + capacity) / 4, 2, false);
    g->channel = channel;
  });
  return info.Env().Undefined();
}

// distGroupSharesMemory(group) -> whether its blocking collectives go through shared memory.
static Napi::Value DistGroupSharesMemory(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), groupOf(info[0], "distGroupSharesMemory: group")->channel != nullptr);
}

// distUnlinkShared(name): removes a shared-memory segment's name; the ranks' mappings stay.
static Napi::Value DistUnlinkShared(const Napi::CallbackInfo& info) {
  SameHostMemory::unlink(toString(info[0], "distUnlinkShared: name"));
  return info.Env().Undefined();
}

// distReducerSetEnabled(reducer, enabled): a disabled reducer lets backward alone (e.g. a
// backward that is not a training step's).
static Napi::Value DistReducerSetEnabled(const Napi::CallbackInfo& info) {
  GradReducer& r = reducerOf(info[0], "GradReducer.setEnabled");
  bool enabled = toBool(info[1], "GradReducer.setEnabled: enabled");
  std::lock_guard<std::mutex> lock(r.mutex);
  r.enabled = enabled;
  return info.Env().Undefined();
}

// distReducerStats(reducer) -> [buckets' value counts, last wait ms, buckets started before
// backward ended, backwards so far, 'shared-memory' or 'gloo'].
static Napi::Value DistReducerStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GradReducer& r = reducerOf(info[0], "GradReducer.stats");
  std::lock_guard<std::mutex> lock(r.mutex);
  auto sizes = Napi::Array::New(env, r.buckets.size());
  for (size_t i = 0; i < r.buckets.size(); i++) sizes.Set(static_cast<uint32_t>(i), Napi::Number::New(env, static_cast<double>(r.buckets[i].flat.numel())));
  auto out = Napi::Array::New(env, 5);
  out.Set(0u, sizes);
  out.Set(1u, Napi::Number::New(env, r.lastWaitMs));
  out.Set(2u, Napi::Number::New(env, static_cast<double>(r.lastLaunchedEarly)));
  out.Set(3u, Napi::Number::New(env, static_cast<double>(r.backwards)));
  out.Set(4u, Napi::String::New(env, r.shared ? "shared-memory" : "gloo"));
  return out;
}

// distReducerRemove(reducer): takes its hooks off the parameters.
static Napi::Value DistReducerRemove(const Napi::CallbackInfo& info) {
  auto* holder = ownedOf<ReducerHolder>(info[0], kReducerTag, "GradReducer.remove", "gradient reducer");
  if (holder->reducer) {
    std::lock_guard<std::mutex> lock(holder->reducer->mutex);
    holder->reducer->removeHooks();
    holder->reducer->enabled = false;
  }
  holder->reducer.reset();
  return info.Env().Undefined();
}

static const char* kSupport = "";

#else

static const char* kSupport =
    "this byol-align addon was built without torch.distributed's Gloo backend: the libtorch it was built against has no "
    "c10d/ProcessGroupGloo.hpp, or the Gloo headers were missing (Debian: apt-get install libgloo-dev), so USE_C10D_GLOO "
    "was not defined; install them and rebuild the addon (npx node-gyp rebuild)";

static Napi::Value Unavailable(const Napi::CallbackInfo& info) { throw Napi::Error::New(info.Env(), std::string("distributed: ") + kSupport); }

#endif

void initDistributed(Napi::Env env, Napi::Object exports) {
  // '' where data-parallel training works; otherwise why it does not.
  exports.Set("distSupport", Napi::String::New(env, kSupport));
#if BYOL_HAS_GLOO
  exports.Set("distStore", Napi::Function::New(env, DistStore));
  exports.Set("distStoreSet", Napi::Function::New(env, DistStoreSet));
  exports.Set("distStoreGet", Napi::Function::New(env, DistStoreGet));
  exports.Set("distStoreAdd", Napi::Function::New(env, DistStoreAdd));
  exports.Set("distGroup", Napi::Function::New(env, DistGroup));
  exports.Set("distDestroyGroup", Napi::Function::New(env, DistDestroyGroup));
  exports.Set("distAllReduce", Napi::Function::New(env, DistAllReduce));
  exports.Set("distBroadcast", Napi::Function::New(env, DistBroadcast));
  exports.Set("distWait", Napi::Function::New(env, DistWait));
  exports.Set("distIsCompleted", Napi::Function::New(env, DistIsCompleted));
  exports.Set("distAllGather", Napi::Function::New(env, DistAllGather));
  exports.Set("distBarrier", Napi::Function::New(env, DistBarrier));
  exports.Set("distSyncBatchNorm", Napi::Function::New(env, DistSyncBatchNorm));
  exports.Set("distReducer", Napi::Function::New(env, DistReducer));
  exports.Set("distReducerSetEnabled", Napi::Function::New(env, DistReducerSetEnabled));
  exports.Set("distReducerStats", Napi::Function::New(env, DistReducerStats));
  exports.Set("distReducerRemove", Napi::Function::New(env, DistReducerRemove));
  exports.Set("distUnlinkShared", Napi::Function::New(env, DistUnlinkShared));
  exports.Set("distGroupShareMemory", Napi::Function::New(env, DistGroupShareMemory));
  exports.Set("distGroupSharesMemory", Napi::Function::New(env, DistGroupSharesMemory));
#else
  for (const char* name : {"distStore", "distStoreSet", "distStoreGet", "distStoreAdd", "distGroup", "distDestroyGroup", "distAllReduce",
                           "distBroadcast", "distWait", "distIsCompleted", "distAllGather", "distBarrier", "distSyncBatchNorm", "distReducer",
                           "distReducerSetEnabled", "distReducerStats", "distReducerRemove", "distUnlinkShared",
                           "distGroupShareMemory", "distGroupSharesMemory"}) {
    exports.Set(name, Napi::Function::New(env, Unavailable));
  }
#endif
}

}  // namespace byol
