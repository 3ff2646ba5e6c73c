// See same_host_memory.h. Layout: a header page (a magic number, the world size, each rank's pid),
// then the counter pairs, each counter on its own cache line (arrived, reduced), then the ranks'
// slots and the result, each slotFloats floats, 64-byte aligned.
#include "same_host_memory.h"
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstring>
#include <stdexcept>

namespace byol {

namespace {

constexpr uint32_t kMagic = 0x62796f6c;  // "byol"
constexpr size_t kLine = 64;
constexpr size_t kPage = 4096;
// How often a wait looks whether its peers' processes still exist.
constexpr int64_t kLivenessMs = 100;

size_t roundUp(size_t n, size_t to) { return (n + to - 1) / to * to; }

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

struct Header {
  uint32_t magic;
  uint32_t worldSize;
  int32_t pids[1];  // worldSize of them
};

}  // namespace

std::shared_ptr<SameHostMemory> SameHostMemory::open(const std::string& name, bool create, int rank, int worldSize, int64_t slotFloats,
                                                     size_t pairs, bool withResult) {
  std::shared_ptr<SameHostMemory> m(new SameHostMemory());
  m->name_ = name;
  m->rank_ = rank;
  m->worldSize_ = worldSize;
  m->countersOffset_ = roundUp(sizeof(Header) + sizeof(int32_t) * static_cast<size_t>(worldSize), kLine);
  m->headerBytes_ = roundUp(m->countersOffset_ + pairs * 2 * kLine, kPage);
  m->slotBytes_ = roundUp(static_cast<size_t>(slotFloats) * sizeof(float), kLine);
  m->bytes_ = m->headerBytes_ + m->slotBytes_ * static_cast<size_t>(worldSize + (withResult ? 1 : 0));
  std::string where = "shared memory " + name + " (" + std::to_string(m->bytes_ >> 20) + " MiB, /dev/shm)";
  int fd = shm_open(name.c_str(), O_RDWR | (create ? O_CREAT | O_EXCL : 0), 0600);
  if (fd < 0) throw std::runtime_error(errnoText("cannot " + std::string(create ? "create " : "open ") + where));
  if (create) {
    // Reserved now, so that a full /dev/shm fails here, and not as a SIGBUS in the middle of backward.
    int err = ftruncate(fd, static_cast<off_t>(m->bytes_)) != 0 ? errno : posix_fallocate(fd, 0, static_cast<off_t>(m->bytes_));
    if (err != 0) {
      close(fd);
      shm_unlink(name.c_str());
      errno = err;
      throw std::runtime_error(errnoText("cannot reserve " + where));
    }
  } else {
    struct stat st;
    if (fstat(fd, &st) != 0 || static_cast<size_t>(st.st_size) != m->bytes_) {
      close(fd);
      throw std::runtime_error(where + ": rank 0 made it of another size; do the ranks train the same model?");
    }
  }
  void* base = mmap(nullptr, m->bytes_, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) throw std::runtime_error(errnoText("cannot map " + where));
  m->base_ = static_cast<char*>(base);
  auto* header = reinterpret_cast<Header*>(m->base_);
  if (create) {
    header->worldSize = static_cast<uint32_t>(worldSize);
    __atomic_store_n(&header->magic, kMagic, __ATOMIC_RELEASE);
  } else if (__atomic_load_n(&header->magic, __ATOMIC_ACQUIRE) != kMagic || header->worldSize != static_cast<uint32_t>(worldSize)) {
    throw std::runtime_error(where + " is not this job's");
  }
  __atomic_store_n(&header->pids[rank], static_cast<int32_t>(getpid()), __ATOMIC_RELEASE);
  return m;
}

void SameHostMemory::unlink(const std::string& name) { shm_unlink(name.c_str()); }

SameHostMemory::~SameHostMemory() {
  if (base_ != nullptr) munmap(base_, bytes_);
}

float* SameHostMemory::slot(int rank) const {
  return reinterpret_cast<float*>(base_ + headerBytes_ + slotBytes_ * static_cast<size_t>(rank));
}

float* SameHostMemory::result() const { return slot(worldSize_); }

uint32_t* SameHostMemory::counter(size_t b, int which) const {
  return reinterpret_cast<uint32_t*>(base_ + countersOffset_ + (b * 2 + static_cast<size_t>(which)) * kLine);
}

static void bump(uint32_t* c) {
  __atomic_add_fetch(c, 1, __ATOMIC_RELEASE);
  syscall(SYS_futex, c, FUTEX_WAKE, INT_MAX, nullptr, nullptr, 0);
}

void SameHostMemory::arrive(size_t b) { bump(counter(b, 0)); }
void SameHostMemory::reduced(size_t b) { bump(counter(b, 1)); }

// The counters only grow (wrapping at 2^32); `target` is reached when the difference is non-negative.
static bool reached(const uint32_t* c, uint32_t target) {
  return static_cast<int32_t>(__atomic_load_n(c, __ATOMIC_ACQUIRE) - target) >= 0;
}

bool SameHostMemory::allArrived(size_t b, uint32_t round) const {
  return reached(counter(b, 0), round * static_cast<uint32_t>(worldSize_));
}

void SameHostMemory::waitArrived(size_t b, uint32_t round, int64_t timeoutMs, const std::string& what) const {
  waitFor(counter(b, 0), round * static_cast<uint32_t>(worldSize_), timeoutMs, what);
}

void SameHostMemory::waitReduced(size_t b, uint32_t round, int64_t timeoutMs, const std::string& what) const {
  waitFor(counter(b, 1), round * static_cast<uint32_t>(worldSize_), timeoutMs, what);
}

void SameHostMemory::waitFor(uint32_t* c, uint32_t target, int64_t timeoutMs, const std::string& what) const {
  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + std::chrono::milliseconds(timeoutMs);
  auto* header = reinterpret_cast<Header*>(base_);
  while (true) {
    uint32_t seen = __atomic_load_n(c, __ATOMIC_ACQUIRE);
    if (static_cast<int32_t>(seen - target) >= 0) return;
    auto now = Clock::now();
    if (now >= deadline) {
      std::string peer = worldSize_ == 2 ? "rank " + std::to_string(1 - rank_) : "a peer";
      throw std::runtime_error(what + " failed: no answer from " + peer + " within the timeout (" + std::to_string(timeoutMs) +
                               " ms): it is stuck, or gone");
    }
    for (int r = 0; r < worldSize_; r++) {
      int32_t pid = __atomic_load_n(&header->pids[r], __ATOMIC_ACQUIRE);
      if (r != rank_ && pid > 0 && kill(pid, 0) != 0 && errno == ESRCH) {
        throw std::runtime_error(what + " failed: rank " + std::to_string(r) + " (pid " + std::to_string(pid) +
                                 ") exited (its process was killed or ended)");
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    int64_t ms = left < kLivenessMs ? left : kLivenessMs;
    struct timespec wait = {static_cast<time_t>(ms / 1000), static_cast<long>((ms % 1000) * 1000000)};
    // Returns at a wake, at the timeout, or at once when the counter has already moved on.
    syscall(SYS_futex, c, FUTEX_WAIT, seen, &wait, nullptr, 0);
  }
}

}  // namespace byol
