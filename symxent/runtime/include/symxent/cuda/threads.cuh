// symxent CUDA kernels: what a skeleton asks of the GPU (its thread, block and cluster, barriers, warp shuffles,
// distributed shared memory, async copies), in one place. emulate.h gives the same names on the host, where
// the row skeleton runs as it is on host threads (the test of its data movement without a GPU).
#ifndef SYMXENT_CUDA_THREADS_CUH
#define SYMXENT_CUDA_THREADS_CUH

#include <cstdint>
#include <cuda_pipeline.h>
#include <cooperative_groups.h>

namespace symxent_cuda {

__device__ __forceinline__ int sx_thread() { return (int)threadIdx.x; }
__device__ __forceinline__ int64_t sx_block() { return (int64_t)blockIdx.x; }
__device__ __forceinline__ int sx_cluster_size() {
  unsigned int n;
  asm("mov.u32 %0, %%cluster_nctarank;" : "=r"(n));
  return (int)n;
}
__device__ __forceinline__ int sx_cluster_rank() {
  unsigned int q;
  asm("mov.u32 %0, %%cluster_ctarank;" : "=r"(q));
  return (int)q;
}
__device__ __forceinline__ void sx_sync() { __syncthreads(); }

// the cluster barrier, split (every thread of every CTA of the cluster, convergent): arrive.release after this
// CTA's shared values are written (or after it has read the others': a relaxed arrive would not order those loads
// before it), wait.acquire before another CTA's values are read or before this CTA exits
__device__ __forceinline__ void sx_cluster_arrive_release() {
  asm volatile("barrier.cluster.arrive.release.aligned;" ::: "memory");
}
__device__ __forceinline__ void sx_cluster_wait() { asm volatile("barrier.cluster.wait.acquire.aligned;" ::: "memory"); }

// the same shared object of CTA `rank` of this cluster (distributed shared memory)
template <typename T> __device__ __forceinline__ T* sx_remote(T* local, int rank) {
  return cooperative_groups::this_cluster().map_shared_rank(local, (unsigned int)rank);
}

__device__ __forceinline__ float sx_shfl_xor(float v, int offset) { return __shfl_xor_sync(0xffffffffu, v, offset); }

// 16 bytes global -> shared without registers (cp.async); commit the batch; wait for every batch
__device__ __forceinline__ void sx_copy_async(uint4* shared, const uint4* global) {
  __pipeline_memcpy_async(shared, global, sizeof(uint4));
}
__device__ __forceinline__ void sx_copy_commit() { __pipeline_commit(); }
__device__ __forceinline__ void sx_copy_wait() { __pipeline_wait_prior(0); }

// the first bad row wins (the host reports the smallest)
__device__ __forceinline__ void sx_report_row(unsigned long long* status, unsigned long long row) { atomicMin(status, row); }

}  // namespace symxent_cuda

#define SX_SHARED(Type, name) __shared__ Type name
#define SX_DYNAMIC_SMEM(name) extern __shared__ __align__(16) unsigned char name[]

#endif  // SYMXENT_CUDA_THREADS_CUH
