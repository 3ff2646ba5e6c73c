// A cache of large freed CPU blocks in front of libtorch's CPU allocator, as PyTorch's caching
// allocator is on CUDA. libtorch allocates CPU tensors with posix_memalign, and glibc serves a
// block above its mmap threshold (at most 32 MiB) with a fresh mmap and unmaps it on free, and
// trims the heap's top: a training step, which frees and allocates the same large activations
// every step, then page-faults each of them in again, zeroed by the kernel, every step (about
// 150,000 faults per alignment step, with both threads of the step queueing on the process's
// memory map). glibc's own knobs cannot fix it (mallopt caps the mmap threshold at 32 MiB, and
// no mmap at all fragmented the heap: eight 64 MiB blocks held for one), so the blocks this cache
// serves stay mapped and go to the next request of about their size.
//
// Blocks of at least kSmallest bytes are kept when freed, up to a byte limit the caller sets
// (beyond it a freed block goes back to the system); a request takes a cached block of its size
// or at most an eighth larger. Smaller requests, and every request while the limit is 0, go to
// c10::alloc_cpu as before. Every block this allocator hands out carries the same deleter with the
// data pointer as its context, so libtorch's raw_allocate/raw_deallocate (oneDNN's scratch memory)
// work too.
#include "holder.h"
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

namespace byol {

namespace {

constexpr size_t kSmallest = 256 * 1024;
constexpr size_t kPage = 4096;

struct BlockCache {
  std::mutex mutex;
  std::unordered_map<void*, size_t> live;  // cacheable blocks handed out, by their size
  std::multimap<size_t, void*> free;       // cached blocks by size
  size_t cachedBytes = 0;
  size_t limit = 0;
  uint64_t hits = 0;
  uint64_t misses = 0;

  // Frees cached blocks (largest first) until at most `keep` bytes are cached; under the mutex.
  void shrinkTo(size_t keep) {
    while (cachedBytes > keep && !free.empty()) {
      auto last = std::prev(free.end());
      cachedBytes -= last->first;
      c10::free_cpu(last->second);
      free.erase(last);
    }
  }
};

// Never destroyed: tensors freed during process exit may still come back to it.
BlockCache& cache() {
  static BlockCache* instance = new BlockCache();
  return *instance;
}

void releaseBlock(void* data) {
  if (data == nullptr) return;
  BlockCache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto found = c.live.find(data);
    if (found != c.live.end()) {
      size_t size = found->second;
      c.live.erase(found);
      if (c.cachedBytes + size <= c.limit) {
        c.free.emplace(size, data);
        c.cachedBytes += size;
        return;
      }
    }
  }
  c10::free_cpu(data);
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const { return take(n); }
  // libtorch 2.3 and later declare allocate non-const and copy_data pure virtual; these overloads
  // override there and are unused extras on older versions.
  c10::DataPtr allocate(size_t n) { return take(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }
  c10::DeleterFnPtr raw_deleter() const override { return &releaseBlock; }

 private:
  static c10::DataPtr take(size_t n) {
    const c10::Device cpu(c10::DeviceType::CPU);
    BlockCache& c = cache();
    if (n < kSmallest) {
      void* data = c10::alloc_cpu(n);
      return {data, data, &releaseBlock, cpu};
    }
    size_t size = (n + kPage - 1) / kPage * kPage;
    {
      std::lock_guard<std::mutex> lock(c.mutex);
      auto fit = c.free.lower_bound(size);
      if (fit != c.free.end() && fit->first <= size + size / 8) {
        void* data = fit->second;
        c.cachedBytes -= fit->first;
        c.live.emplace(data, fit->first);
        c.free.erase(fit);
        c.hits++;
        return {data, data, &releaseBlock, cpu};
      }
      c.misses++;
    }
    void* data = c10::alloc_cpu(size);  // throws on failure, before anything is recorded
    std::lock_guard<std::mutex> lock(c.mutex);
    c.live.emplace(data, size);
    return {data, data, &releaseBlock, cpu};
  }
};

// cacheCpuBlocks(limitBytes) -> [hits, misses, cachedBytes]: installs the cache as libtorch's CPU
// allocator on first use and sets how many freed bytes it may keep (0: none, and what it keeps is
// freed now). Throws when another CPU allocator of higher priority is installed.
Napi::Value CacheCpuBlocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  double limit = toDouble(info[0], "cacheCpuBlocks: limitBytes");
  if (!(limit >= 0) || limit > 9.0e15) throw Napi::RangeError::New(env, "cacheCpuBlocks: limitBytes must be a number of bytes >= 0");
  return guarded(env, "cacheCpuBlocks", [&]() -> Napi::Value {
    static CachingCpuAllocator* allocator = nullptr;
    if (allocator == nullptr) {
      allocator = new CachingCpuAllocator();  // never freed: tensors anywhere may hold its blocks
      c10::SetCPUAllocator(allocator, /*priority=*/0);  // replaces the default one (priority 0)
    }
    if (c10::GetCPUAllocator() != allocator) throw Napi::Error::New(env, "another CPU allocator of higher priority is installed");
    BlockCache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    c.limit = static_cast<size_t>(limit);
    c.shrinkTo(c.limit);
    Napi::Array out = Napi::Array::New(env, 3);
    out.Set(0u, Napi::Number::New(env, static_cast<double>(c.hits)));
    out.Set(1u, Napi::Number::New(env, static_cast<double>(c.misses)));
    out.Set(2u, Napi::Number::New(env, static_cast<double>(c.cachedBytes)));
    return out;
  });
}

}  // namespace

void initCpuBlockCache(Napi::Env env, Napi::Object exports) {
  exports.Set("cacheCpuBlocks", Napi::Function::New(env, CacheCpuBlocks));
}

}  // namespace byol
