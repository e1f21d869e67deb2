// symxent CUDA kernels on the host: what the skeletons ask of a GPU (threads, blocks, clusters, barriers, warp
// shuffles, shared and distributed shared memory, async copies, bf16), given by host threads, so that a
// generated NAME.cu compiles with a host C++20 compiler and its row kernel runs as it is: the test of the
// kernels' data movement where there is no GPU (tests/test_cuda_codegen.py). Include this first, then the
// generated files; call emulate::launch_rows (rows.cuh) in place of a launch.
//
// Each CTA of a cluster is kThreads host threads; __syncthreads is a std::barrier of the CTA, a cluster barrier
// one of the cluster (arrive and wait split as on the device), a warp shuffle an exchange through the warp's
// slots between two barriers of its 32 threads; __shared__ storage is one object per CTA (by type), which
// another CTA of the cluster reaches as through distributed shared memory. Not emulated: timing, the memory
// model's weaker orders (every access here is sequentially consistent after a barrier), and fp16.
#ifndef SYMXENT_CUDA_EMULATE_H
#define SYMXENT_CUDA_EMULATE_H
#define SYMXENT_CUDA_EMULATE 1

#include <pthread.h>

#include <barrier>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <typeindex>
#include <vector>

#define __device__
#define __global__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)

// --- CUDA's vector types, bit casts and loads -----------------------------------------------------
struct uint4 {
  unsigned int x, y, z, w;
};
struct float4 {
  float x, y, z, w;
};
inline uint4 make_uint4(unsigned int x, unsigned int y, unsigned int z, unsigned int w) { return uint4{x, y, z, w}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline float __uint_as_float(unsigned int u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline unsigned int __float_as_uint(float f) {
  unsigned int u;
  std::memcpy(&u, &f, 4);
  return u;
}
template <typename T> inline T __ldcg(const T* p) { return *p; }
template <typename T> inline T __ldg(const T* p) { return *p; }

// bfloat16: the upper 16 bits of an fp32, rounded to nearest even (NaN kept quiet)
struct __nv_bfloat16 {
  unsigned short bits;
};
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
  unsigned int u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{(unsigned short)((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return __nv_bfloat16{(unsigned short)(u >> 16)};
}
inline float __bfloat162float(__nv_bfloat16 b) { return __uint_as_float((unsigned int)b.bits << 16); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.bits; }

namespace symxent_cuda {
namespace emulate {

constexpr int kWarpSize = 32;

struct Warp {
  explicit Warp() : barrier(kWarpSize) {}
  std::barrier<> barrier;
  float slot[kWarpSize] = {};
};

struct Cta {
  Cta(int threads, size_t dynamic_bytes)
      : barrier(threads), dynamic(dynamic_bytes + 16), warps(threads / kWarpSize) {
    for (auto& w : warps) w = std::make_unique<Warp>();
  }
  std::barrier<> barrier;
  std::vector<unsigned char> dynamic;  // extern __shared__ (16-byte aligned below)
  std::vector<std::unique_ptr<Warp>> warps;
  std::mutex lock;
  std::map<std::type_index, std::shared_ptr<void>> statics;  // __shared__ objects, one per type
  unsigned char* dynamic_smem() {
    auto p = reinterpret_cast<uintptr_t>(dynamic.data());
    return reinterpret_cast<unsigned char*>((p + 15) & ~uintptr_t(15));
  }
  template <typename T> T& object() {
    std::lock_guard<std::mutex> guard(lock);
    auto& slot = statics[std::type_index(typeid(T))];
    if (!slot) slot = std::make_shared<T>();
    return *static_cast<T*>(slot.get());
  }
};

struct Cluster {
  Cluster(int size, int threads, size_t dynamic_bytes) : barrier(size * threads) {
    for (int q = 0; q < size; ++q) ctas.push_back(std::make_unique<Cta>(threads, dynamic_bytes));
  }
  std::barrier<> barrier;
  std::vector<std::unique_ptr<Cta>> ctas;
};

// what a host thread playing a CUDA thread knows about itself
struct Self {
  int thread = 0, rank = 0, size = 1;
  int64_t block = 0;
  Cluster* cluster = nullptr;
  std::optional<std::barrier<>::arrival_token> arrival;  // between a cluster arrive and its wait
  Cta& cta() const { return *cluster->ctas[rank]; }
};
inline thread_local Self self;

// run `body` as the kernel of `blocks` CTAs of `threads` threads in clusters of `size` (one cluster at a time)
inline void launch(int64_t blocks, int size, int threads, size_t dynamic_bytes, const std::function<void()>& body) {
  if (blocks % size != 0) throw std::invalid_argument("emulate::launch: blocks must be a multiple of the cluster size");
  struct Start {
    Self who;
    const std::function<void()>* body;
  };
  for (int64_t first = 0; first < blocks; first += size) {
    Cluster cluster(size, threads, dynamic_bytes);
    std::vector<Start> starts((size_t)size * threads);
    std::vector<pthread_t> ids(starts.size());
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (int q = 0; q < size; ++q) {
      for (int t = 0; t < threads; ++t) {
        Start& s = starts[(size_t)q * threads + t];
        s.who.thread = t;
        s.who.rank = q;
        s.who.size = size;
        s.who.block = first + q;
        s.who.cluster = &cluster;
        s.body = &body;
      }
    }
    for (size_t k = 0; k < starts.size(); ++k) {
      auto run = [](void* arg) -> void* {
        auto* s = static_cast<Start*>(arg);
        self.thread = s->who.thread;
        self.rank = s->who.rank;
        self.size = s->who.size;
        self.block = s->who.block;
        self.cluster = s->who.cluster;
        (*s->body)();
        return nullptr;
      };
      if (pthread_create(&ids[k], &attr, run, &starts[k]) != 0) throw std::runtime_error("emulate::launch: pthread_create");
    }
    for (auto id : ids) pthread_join(id, nullptr);
    pthread_attr_destroy(&attr);
  }
}

}  // namespace emulate

// --- what the skeletons call (threads.cuh has the device versions) ---------------------------------
inline int sx_thread() { return emulate::self.thread; }
inline int64_t sx_block() { return emulate::self.block; }
inline int sx_cluster_size() { return emulate::self.size; }
inline int sx_cluster_rank() { return emulate::self.rank; }
inline void sx_sync() { emulate::self.cta().barrier.arrive_and_wait(); }
inline void sx_cluster_arrive_release() { emulate::self.arrival.emplace(emulate::self.cluster->barrier.arrive()); }
inline void sx_cluster_wait() {
  emulate::self.cluster->barrier.wait(std::move(*emulate::self.arrival));
  emulate::self.arrival.reset();
}
template <typename T> inline T* sx_remote(T* local, int rank) {
  (void)local;
  return &emulate::self.cluster->ctas[rank]->template object<T>();
}
inline float sx_shfl_xor(float v, int offset) {
  emulate::Warp& warp = *emulate::self.cta().warps[emulate::self.thread / emulate::kWarpSize];
  const int lane = emulate::self.thread % emulate::kWarpSize;
  warp.slot[lane] = v;
  warp.barrier.arrive_and_wait();
  const float r = warp.slot[lane ^ offset];
  warp.barrier.arrive_and_wait();
  return r;
}
inline void sx_copy_async(uint4* shared, const uint4* global) { *shared = *global; }
inline void sx_copy_commit() {}
inline void sx_copy_wait() {}
inline void sx_report_row(unsigned long long* status, unsigned long long row) {
  unsigned long long seen = __atomic_load_n(status, __ATOMIC_SEQ_CST);
  while (row < seen && !__atomic_compare_exchange_n(status, &seen, row, false, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
  }
}

}  // namespace symxent_cuda

#define SX_SHARED(Type, name) Type& name = ::symxent_cuda::emulate::self.cta().template object<Type>()
#define SX_DYNAMIC_SMEM(name) unsigned char* name = ::symxent_cuda::emulate::self.cta().dynamic_smem()

#include "symxent/cuda/common.cuh"

#endif  // SYMXENT_CUDA_EMULATE_H
