// Memory that data-parallel ranks on one machine share, in one POSIX shared-memory segment
// (shm_open, under /dev/shm): a slot for each rank, optionally one more for a result, and pairs of
// counters the ranks wait on with a futex. The gradient buckets (one counter pair a bucket) and a
// group's blocking collectives (one pair for each of two alternating buffers) use it
// (native/distributed.cc). Written by hand because no library we link does it: Gloo has only
// network transports, so on one machine every collective goes through loopback TCP and Gloo's
// helper threads, which take the CPU from the ranks (bench/RESULTS.md, issue 15); NCCL does this
// only between GPUs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace byol {

class SameHostMemory {
 public:
  // Rank 0 creates the segment `name` (it must not exist) with room for `slotFloats` floats per
  // rank (and for a result, withResult) and `pairs` pairs of counters; the other ranks open it.
  // Throws a std::runtime_error naming the segment and the reason (e.g. /dev/shm too small).
  static std::shared_ptr<SameHostMemory> open(const std::string& name, bool create, int rank, int worldSize, int64_t slotFloats,
                                              size_t pairs, bool withResult);
  // Removes the name (the mapping stays until every rank unmaps it): called once every rank has it open.
  static void unlink(const std::string& name);
  ~SameHostMemory();

  float* slot(int rank) const;
  float* result() const;
  // Counter pair b: this rank's data is in its slot / this rank is done with the round (for a
  // bucket: its share of the result is written).
  void arrive(size_t b);
  void reduced(size_t b);
  bool allArrived(size_t b, uint32_t round) const;
  // Wait until every rank has arrived / reduced in `round` (1, 2, ...: the counters count every
  // rank's arrivals since the segment was made). Throws, naming `what`, when a peer's process has
  // exited or timeoutMs passes first.
  void waitArrived(size_t b, uint32_t round, int64_t timeoutMs, const std::string& what) const;
  void waitReduced(size_t b, uint32_t round, int64_t timeoutMs, const std::string& what) const;

 private:
  SameHostMemory() = default;
  uint32_t* counter(size_t b, int which) const;
  void waitFor(uint32_t* counter, uint32_t target, int64_t timeoutMs, const std::string& what) const;

  std::string name_;
  int rank_ = 0;
  int worldSize_ = 0;
  size_t countersOffset_ = 0;  // bytes from the start to the first counter
  size_t slotBytes_ = 0;
  size_t headerBytes_ = 0;
  size_t bytes_ = 0;
  char* base_ = nullptr;
};

}  // namespace byol
