// symxent CUDA kernels: the skeleton of every row kernel (row losses and row maps). Part of the runtime
// (symxent/runtime/include, package data). A generated NAME.cu includes it, prints its math into
// Case structs and a module struct M, and instantiates the skeleton with one line:
//
//   namespace sx_NAME { struct Params {...}; using Row = symxent_cuda::RowStats<G, S>;
//                       struct Case0 {...}; ...; struct Module {...}; }
//   SYMXENT_CUDA_ROWS_MODULE(NAME, sx_NAME::Module)
//
// M (deriving from RowsModule<Row, Params, Case0, ...>) provides: kName, kMaxGathers, kMaxSums, kParams,
// Row, Params, Cases (std::tuple of the Case structs, selected by index), and static Params
// params(const double* values).
//
// Design: each row is read from HBM once. A row is split across a thread-block cluster of S CTAs
// (S = 1, 2, 4 or 8, the smallest that makes a CTA's share <= 64 KB). Each CTA copies its share
// into shared memory with 16-byte cp.async and computes its partial statistics in one pass: the
// running row maximum m and the class-axis sums of the printed expressions (the C target's: max-
// shifted), each moved along when m grows (exp(-m) sums rescaled, sums linear in m shifted). The
// cluster merges the partials through distributed shared memory (in rank order: deterministic),
// and each CTA writes its share of the output from shared memory: one read and one write of the
// logits, the minimum. A row too long for the cluster's shared memory is streamed twice instead
// (the second read mostly hits L2). Loop-invariant pieces of the printed math are computed once
// per row (passN_terms). Offsets are 64-bit; a scalar head and tail handle rows that do not start
// or end on 16 bytes.
//
// Compiled with SYMXENT_CUDA_HOST_CHECK defined, only the per-row statistics are declared (RowStats,
// Partial, rebase, merge, accumulate): the host-side test of the printed math includes the generated
// files with the same definitions the kernels use.
#ifndef SYMXENT_CUDA_ROWS_CUH
#define SYMXENT_CUDA_ROWS_CUH

#include <cmath>
#include <cstdint>
#include <tuple>
#ifndef SYMXENT_CUDA_HOST_CHECK
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <cuda_pipeline.h>
#include <cooperative_groups.h>
#include "symxent/cuda/api.h"
#include "symxent/cuda/common.cuh"
#endif

namespace symxent_cuda {

constexpr int kThreads = 256;               // threads per CTA
constexpr int kWarps = kThreads / 32;
constexpr int kMaxCluster = 8;              // CTAs per row at most (the portable cluster size)
constexpr int64_t kSliceBytes = 64 * 1024;  // aim for at most this much of a row per CTA

// what every printed function may use about the row
// (NG: the most gathers, NS: the most sums of any case of the module)
template <int NG, int NS> struct RowStats {
  static constexpr int kMaxGathers = NG, kMaxSums = NS;
  float m;      // the row maximum of the case's score (0 if the case has none or all are -inf)
  float lse;    // m + log(sum of exp(score - m)), when the case has that sum
  float n;      // number of classes
  float g[NG];  // values gathered at the target class
  float s[NS];  // class-axis sums (after the reduction, at the shift m)
};

// What a module M gives the skeleton besides kName, kParams and params(values): derive from this.
template <typename RowT, typename ParamsT, typename... CaseTs> struct RowsModule {
  using Row = RowT;
  using Params = ParamsT;
  using Cases = std::tuple<CaseTs...>;
  static constexpr int kMaxGathers = Row::kMaxGathers, kMaxSums = Row::kMaxSums;
};

// --- a case: the printed math of one generated function -------------------------------------------
// A generated Case struct derives from RowCase<Row, Params> and defines what its math needs:
//   kIndexTarget   each row has a target class c          kSecondRow  a second (R, C) input y
//   kHasMax        a row maximum m (the shift of the exponentials)
//   kSums          the number of class-axis sums          kLseSum     the sum of exp(score - m): lse = m + log(s) (-1: none)
//   kScatter       a value is added at the target class
//   kHoisted1/2    loop-invariant values of pass 1 / pass 2, computed once per row (pass1_terms, pass2_terms)
//   sum_kind(j)    how sum j follows the running maximum m: 0 not at all, 1 as exp(-m) (rescaled by
//                  exp(m_old - m_new)), 2 linearly (shifted by (m_old - m_new) * u, u the sum of -d term / dm)
//   gather         the values at the target class c (row.g)
//   score          the element whose maximum over the row is m
//   sums           one element's term of each class-axis sum at the shift m (s), and -d term / dm of the linear ones (u)
//   loss           the row's loss from its statistics      dense    one output element (gradient or map)
//   scatter        what the output gains at the target class
// The defaults below are what a case without that piece computes (nothing), so a Case prints only its math.
template <typename Row, typename Params> struct RowCase {
  static constexpr bool kIndexTarget = false, kSecondRow = false, kHasMax = false, kScatter = false;
  static constexpr int kSums = 0, kLseSum = -1, kHoisted1 = 0, kHoisted2 = 0;
  __device__ static constexpr int sum_kind(int) { return 0; }
  template <typename T>
  __device__ static __forceinline__ void gather(const T*, const T*, const T*, int64_t, float*) {}
  __device__ static __forceinline__ void pass1_terms(const Row&, const Params&, float*) {}
  __device__ static __forceinline__ float score(float, float, float, const Row&, const float*, const Params&) {
    return 0.0f;
  }
  __device__ static __forceinline__ void sums(float, float, float, float, const Row&, const float*, const Params&,
                                              float*, float*) {}
  __device__ static __forceinline__ float loss(const Row&, const Params&) { return 0.0f; }
  __device__ static __forceinline__ void pass2_terms(const Row&, const Params&, float*) {}
  __device__ static __forceinline__ float scatter(const Row&, const Params&) { return 0.0f; }
};

// --- reductions ---------------------------------------------------------------------------------
// A thread's, CTA's or cluster's partial statistics: the running maximum m of the scores, each sum
// evaluated at the shift m (kind 1 and 2 sums depend on it), and u: the sums of -d term / dm of the
// linear (kind 2) sums, which say how those move when m does.
template <int NS> struct Partial {
  float m;
  float s[NS];
  float u[NS];
};

template <int NS> __device__ __forceinline__ Partial<NS> empty_partial() {
  Partial<NS> p;
  p.m = -INFINITY;
#pragma unroll
  for (int j = 0; j < NS; ++j) {
    p.s[j] = 0.0f;
    p.u[j] = 0.0f;
  }
  return p;
}

// the shift the sums are evaluated at: the running maximum, or 0 while every score so far is -inf
__device__ __forceinline__ float shift_of(float m) { return m == -INFINITY ? 0.0f : m; }

// move a partial's sums from its maximum to a maximum top >= it (exact: no rounding when top == p.m)
template <typename Case, int NS> __device__ __forceinline__ void rebase(Partial<NS>& p, float top) {
#pragma unroll
  for (int j = 0; j < NS; ++j) {
    if (j < Case::kSums && Case::sum_kind(j) == 1) p.s[j] = (p.m == -INFINITY) ? 0.0f : p.s[j] * sx_exp(p.m - top);
    if (j < Case::kSums && Case::sum_kind(j) == 2) p.s[j] += (shift_of(p.m) - shift_of(top)) * p.u[j];
  }
  p.m = top;
}

// merge b into a: both brought to the larger maximum, then added
template <typename Case, int NS> __device__ __forceinline__ void merge(Partial<NS>& a, Partial<NS> b) {
  if constexpr (Case::kHasMax) {
    const float top = fmaxf(a.m, b.m);
    rebase<Case>(a, top);
    rebase<Case>(b, top);
  }
#pragma unroll
  for (int j = 0; j < NS; ++j) {
    a.s[j] += b.s[j];
    a.u[j] += b.u[j];
  }
}

// add N values of the row to a thread's partial statistics (online: the running maximum first)
template <typename Case, int N, int NS, typename Row, typename Params>
__device__ __forceinline__ void accumulate(Partial<NS>& p, const float (&x)[N], const float (&y)[N],
                                           const float (&w)[N], const Row& row, const float* h,
                                           const Params& prm) {
  if constexpr (Case::kHasMax) {
    float top = p.m;
#pragma unroll
    for (int i = 0; i < N; ++i) top = fmaxf(top, Case::score(x[i], y[i], w[i], row, h, prm));
    if (top > p.m) rebase<Case>(p, top);
  }
  if constexpr (Case::kSums > 0) {
    const float m = shift_of(p.m);
#pragma unroll
    for (int i = 0; i < N; ++i) Case::sums(x[i], y[i], w[i], m, row, h, prm, p.s, p.u);
  }
}

#ifndef SYMXENT_CUDA_HOST_CHECK
namespace cg = cooperative_groups;

template <typename Case, int NS> __device__ __forceinline__ void warp_merge(Partial<NS>& p) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    Partial<NS> o;
    o.m = __shfl_xor_sync(0xffffffffu, p.m, offset);
#pragma unroll
    for (int j = 0; j < NS; ++j) {
      o.s[j] = __shfl_xor_sync(0xffffffffu, p.s[j], offset);
      o.u[j] = __shfl_xor_sync(0xffffffffu, p.u[j], offset);
    }
    merge<Case>(p, o);
  }
}

// column of the k-th scalar (unaligned) element of a row: the head [0, head), then the tail
__device__ __forceinline__ int64_t scalar_column(int k, int64_t head, int64_t tail, int64_t cols) {
  return k < head ? (int64_t)k : cols - tail + (k - head);
}

// --- the kernel: one row per cluster ------------------------------------------------------------
template <typename M, typename T, typename Case>
__global__ void __launch_bounds__(kThreads)
rows_kernel(const T* x, const T* y, const T* weight, const int64_t* target, T* out, float* loss_out,
            float* lse_out, const float* denom, float factor, unsigned long long* status, int64_t rows,
            int64_t cols, int64_t ignore_index, bool cache_row, bool lse_of_ignored, typename M::Params prm) {
  // x and out may be the same buffer (in-place gradient): no __restrict__ on either.
  using Row = typename M::Row;
  constexpr int VEC = Vec<T>::N;  // values per 16-byte pack
  constexpr int NS = Case::kSums > 0 ? Case::kSums : 1;
  constexpr bool kFirstPass = Case::kHasMax || Case::kSums > 0;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  __shared__ Partial<NS> warp_part[kWarps];
  __shared__ Partial<NS> cta_part;  // read by every CTA of the cluster
  __shared__ Row row_shared;

  cg::cluster_group cluster = cg::this_cluster();
  const int S = (int)cluster.num_blocks();
  const int rank = (int)cluster.block_rank();
  const int64_t r = (int64_t)(blockIdx.x / (unsigned)S);
  const int tid = (int)threadIdx.x;
  if (r >= rows) return;  // never: the grid has rows * S CTAs (uniform over the cluster anyway)

  // the row: a scalar head up to the first 16-byte boundary, nvec packs, a scalar tail
  const int64_t base = r * cols;
  const T* xr = x + base;
  const T* yr = Case::kSecondRow ? y + base : nullptr;
  T* outr = out ? out + base : nullptr;
  int64_t head = (VEC - base % VEC) % VEC;
  if (head > cols) head = cols;
  const int64_t nvec = (cols - head) / VEC;
  const int64_t tail = cols - head - nvec * VEC;
  // this CTA's packs [v0, v0 + mine); rank 0 also owns the head + tail scalars
  const int64_t per = (nvec + S - 1) / S;
  const int64_t v0 = min64(nvec, per * rank);
  const int mine = (int)(min64(nvec, v0 + per) - v0);
  const int scalars = rank == 0 ? (int)(head + tail) : 0;
  const uint4* xv = packs(xr + head) + v0;
  const uint4* yv = Case::kSecondRow ? packs(yr + head) + v0 : nullptr;
  const bool w_aligned = head == 0;  // the class vector's packs line up with the row's

  // the target class: ignored rows and out-of-range targets give zero loss and gradient and are
  // never used as an index (out of range also flags the row in *status for the host to report)
  int64_t c = -1;
  bool skip = false;
  if constexpr (Case::kIndexTarget) {
    const int64_t t = target[r];
    if (t == ignore_index) {
      skip = true;
    } else if (t < 0 || t >= cols) {
      if (rank == 0 && tid == 0) atomicMin(status, (unsigned long long)r);
      skip = true;
    } else {
      c = t;
    }
  }
  if (skip && !lse_of_ignored) {  // the whole cluster takes this branch: no cluster barrier pending
    if (outr != nullptr) {
      const uint4 zero = make_uint4(0u, 0u, 0u, 0u);  // +0.0 in every dtype
      uint4* ov = packs(outr + head) + v0;
      for (int v = tid; v < mine; v += kThreads) ov[v] = zero;
      if (tid < scalars) outr[scalar_column(tid, head, tail, cols)] = from_float<T>(0.0f);
    }
    if (rank == 0 && tid == 0) {
      if (loss_out != nullptr) loss_out[r] = 0.0f;
      if (lse_out != nullptr) lse_out[r] = 0.0f;
    }
    return;
  }

  // start copying this CTA's share of the row into shared memory
  uint4* cache = reinterpret_cast<uint4*>(smem_raw);
  if (cache_row && kFirstPass) {
    for (int v = tid; v < mine; v += kThreads) __pipeline_memcpy_async(&cache[v], &xv[v], sizeof(uint4));
    __pipeline_commit();
  }
  // meanwhile: values at the target class (read before the cluster barrier, so before any CTA of
  // the cluster overwrites the row in place)
  if (tid == 0) {
    Row init;
    init.m = 0.0f;
    init.lse = 0.0f;
    init.n = (float)cols;
#pragma unroll
    for (int j = 0; j < M::kMaxGathers; ++j) init.g[j] = 0.0f;
#pragma unroll
    for (int j = 0; j < M::kMaxSums; ++j) init.s[j] = 0.0f;
    if (c >= 0) Case::gather(xr, yr, weight, c, init.g);
    row_shared = init;
  }
  if (cache_row && kFirstPass) __pipeline_wait_prior(0);
  __syncthreads();
  Row row = row_shared;

  // pass 1: partial statistics of this CTA's share
  Partial<NS> part = empty_partial<NS>();
  if constexpr (kFirstPass) {
    float h1[Case::kHoisted1 > 0 ? Case::kHoisted1 : 1];
    Case::pass1_terms(row, prm, h1);
#pragma unroll 4
    for (int v = tid; v < mine; v += kThreads) {
      const int64_t col = head + (v0 + v) * VEC;
      float xf[VEC], yf[VEC] = {}, wf[VEC];
      Vec<T>::unpack(cache_row ? load_shared_pack(cache + v) : load_pack(xv + v), xf);
      if constexpr (Case::kSecondRow) Vec<T>::unpack(load_pack(yv + v), yf);
      load_classes(weight, col, w_aligned, wf);
      accumulate<Case>(part, xf, yf, wf, row, h1, prm);
    }
    if (tid < scalars) {
      const int64_t col = scalar_column(tid, head, tail, cols);
      float xf[1] = {to_float<T>(xr[col])};
      float yf[1] = {Case::kSecondRow ? to_float<T>(yr[col]) : 0.0f};
      float wf[1] = {weight != nullptr ? to_float<T>(weight[col]) : 1.0f};
      accumulate<Case>(part, xf, yf, wf, row, h1, prm);
    }
  }
  warp_merge<Case>(part);
  if ((tid & 31) == 0) warp_part[tid >> 5] = part;
  __syncthreads();
  if (tid < 32) {
    Partial<NS> p = tid < kWarps ? warp_part[tid] : empty_partial<NS>();
    warp_merge<Case>(p);
    if (tid == 0) cta_part = p;
  }
  cluster.sync();  // every CTA's partial is written (and every CTA has read its target values)

  // the row's statistics: the partials of the cluster merged in rank order (the same in every CTA)
  if (tid == 0) {
    Partial<NS> total = *cluster.map_shared_rank(&cta_part, 0);
    for (int q = 1; q < S; ++q) merge<Case>(total, *cluster.map_shared_rank(&cta_part, q));
    Row done = row_shared;
    done.m = shift_of(total.m);
#pragma unroll
    for (int j = 0; j < M::kMaxSums; ++j) done.s[j] = j < Case::kSums ? total.s[j] : 0.0f;
    done.lse = Case::kLseSum >= 0 ? done.m + logf(done.s[Case::kLseSum >= 0 ? Case::kLseSum : 0]) : 0.0f;
    row_shared = done;
    if (rank == 0) {
      if (lse_out != nullptr) lse_out[r] = done.lse;
      if (loss_out != nullptr) loss_out[r] = skip ? 0.0f : Case::loss(done, prm);
    }
  }
  __syncthreads();
  row = row_shared;

  // pass 2: the dense output (gradient or map) of this CTA's share, from shared memory
  if (outr != nullptr) {
    const float scale = denom != nullptr ? factor / *denom : factor;
    const float at_target = skip ? 0.0f : Case::scatter(row, prm);  // added at column c
    float h2[Case::kHoisted2 > 0 ? Case::kHoisted2 : 1];
    Case::pass2_terms(row, prm, h2);
    uint4* ov = packs(outr + head) + v0;
#pragma unroll 4
    for (int v = tid; v < mine; v += kThreads) {
      const int64_t col = head + (v0 + v) * VEC;
      float xf[VEC], yf[VEC] = {}, wf[VEC];
      Vec<T>::unpack((cache_row && kFirstPass) ? load_shared_pack(cache + v) : load_pack(xv + v), xf);
      if constexpr (Case::kSecondRow) Vec<T>::unpack(load_pack(yv + v), yf);
      load_classes(weight, col, w_aligned, wf);
      float o[VEC];
#pragma unroll
      for (int i = 0; i < VEC; ++i) {
        float value = Case::dense(xf[i], yf[i], wf[i], row, h2, prm);  // fp32, rounded once below
        if (Case::kScatter && col + i == c) value += at_target;
        o[i] = skip ? 0.0f : scale * value;
      }
      ov[v] = Vec<T>::pack(o);
    }
    if (tid < scalars) {
      const int64_t col = scalar_column(tid, head, tail, cols);
      const float xs = to_float<T>(xr[col]);
      const float ys = Case::kSecondRow ? to_float<T>(yr[col]) : 0.0f;
      const float ws = weight != nullptr ? to_float<T>(weight[col]) : 1.0f;
      float value = Case::dense(xs, ys, ws, row, h2, prm);
      if (Case::kScatter && col == c) value += at_target;
      outr[col] = from_float<T>(skip ? 0.0f : scale * value);
    }
  }
  cluster.sync();  // keep cta_part alive until every CTA of the cluster has read it
}

// --- before the rows: total weight of the non-ignored targets, range check ----------------------
template <typename T>
__global__ void __launch_bounds__(1024)
prepare_kernel(const int64_t* target, const T* weight, int64_t rows, int64_t cols, int64_t ignore_index,
               float* total_weight, unsigned long long* status) {
  __shared__ float warp_sum[32];
  float acc = 0.0f;
  for (int64_t r = threadIdx.x; r < rows; r += blockDim.x) {
    const int64_t t = target[r];
    if (t == ignore_index) continue;
    if (t < 0 || t >= cols) {
      atomicMin(status, (unsigned long long)r);
      continue;
    }
    acc += weight != nullptr ? to_float<T>(weight[t]) : 1.0f;
  }
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, offset);
  if ((threadIdx.x & 31) == 0) warp_sum[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x >> 5) ? warp_sum[threadIdx.x] : 0.0f;
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    if (threadIdx.x == 0) *total_weight = v;
  }
}

// --- backward: multiply each row by its upstream gradient, in place -----------------------------
template <typename T>
__global__ void __launch_bounds__(kThreads)
scale_rows_kernel(T* grad, const float* grad_output, int64_t go_stride, int64_t rows, int64_t cols) {
  constexpr int VEC = Vec<T>::N;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float s = grad_output[r * go_stride];
    if (s == 1.0f) continue;  // exact: nothing to do (uniform over the CTA)
    const int64_t base = r * cols;
    T* gr = grad + base;
    int64_t head = (VEC - base % VEC) % VEC;
    if (head > cols) head = cols;
    const int64_t nvec = (cols - head) / VEC;
    const int64_t tail = cols - head - nvec * VEC;
    uint4* gv = packs(gr + head);
    for (int64_t v = threadIdx.x; v < nvec; v += kThreads) {
      float f[VEC];
      Vec<T>::unpack(load_pack(gv + v), f);
#pragma unroll
      for (int i = 0; i < VEC; ++i) f[i] *= s;
      gv[v] = Vec<T>::pack(f);
    }
    if (threadIdx.x < head + tail) {
      const int64_t col = scalar_column((int)threadIdx.x, head, tail, cols);
      gr[col] = from_float<T>(to_float<T>(gr[col]) * s);
    }
  }
}

// --- host side ----------------------------------------------------------------------------------
template <typename M> struct RowsArgs {
  const void* x;
  const void* y;
  const void* weight;
  const int64_t* target;
  void* out;
  float* loss;
  float* lse;
  const float* denom;
  float factor;
  unsigned long long* status;
  int64_t rows;
  int64_t cols;
  int64_t ignore_index;
  bool lse_of_ignored;
  typename M::Params prm;
  cudaStream_t stream;
};

// the launch-configuration caches below are shared by every host thread that launches: one lock guards them
static std::mutex& launch_cache_lock() {
  static std::mutex lock;
  return lock;
}

// clusters of this kernel that fit on the device at once (cached per configuration)
template <typename Kernel>
static int active_clusters(Kernel kernel, const cudaLaunchConfig_t& cfg) {
  int device = 0;
  sx_check(cudaGetDevice(&device), "cudaGetDevice");
  static std::map<std::tuple<const void*, int, unsigned, size_t>, int> known;
  const auto key = std::make_tuple((const void*)kernel, device, cfg.attrs[0].val.clusterDim.x, cfg.dynamicSmemBytes);
  std::lock_guard<std::mutex> guard(launch_cache_lock());
  auto found = known.find(key);
  if (found != known.end()) return found->second;
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, kernel, &cfg) != cudaSuccess) {
    (void)cudaGetLastError();  // an impossible configuration: report 0, clear the error
    clusters = 0;
  }
  known[key] = clusters;
  return clusters;
}

// allow this kernel the largest dynamic shared memory it may ask for, once per (kernel, device): a launch never
// meets a smaller limit that another host thread set for its own configuration in the meantime
template <typename Kernel>
static void allow_dynamic_smem(Kernel kernel, size_t largest) {
  int device = 0;
  sx_check(cudaGetDevice(&device), "cudaGetDevice");
  static std::set<std::pair<const void*, int>> done;
  std::lock_guard<std::mutex> guard(launch_cache_lock());
  if (!done.insert(std::make_pair((const void*)kernel, device)).second) return;
  sx_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)largest),
           "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
}

template <typename M, typename T, typename Case>
static void launch_rows(const RowsArgs<M>& a) {
  auto kernel = rows_kernel<M, T, Case>;
  constexpr int VEC = Vec<T>::N;
  // cluster size: the smallest power of two that cuts a row into shares of <= kSliceBytes
  const int64_t row_bytes = a.cols * (int64_t)sizeof(T);
  int S = 1;
  while (S < kMaxCluster && row_bytes > S * kSliceBytes) S *= 2;
  // shared memory for one share (only worth it when there is a second pass over the row)
  const bool two_passes = a.out != nullptr && (Case::kHasMax || Case::kSums > 0);
  const int64_t max_packs = (a.cols / VEC + S - 1) / S;
  size_t smem = two_passes ? (size_t)max_packs * sizeof(uint4) : 0;
  cudaFuncAttributes attributes;
  sx_check(cudaFuncGetAttributes(&attributes, kernel), "cudaFuncGetAttributes");
  const size_t optin = (size_t)sx_device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  if (smem + attributes.sharedSizeBytes > optin) smem = 0;  // too long: stream the row twice
  if (smem > 0) allow_dynamic_smem(kernel, optin - attributes.sharedSizeBytes);

  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeClusterDimension;
  attribute[0].val.clusterDim.x = 1;
  attribute[0].val.clusterDim.y = 1;
  attribute[0].val.clusterDim.z = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.blockDim = dim3(kThreads, 1, 1);
  cfg.stream = a.stream;
  cfg.attrs = attribute;
  cfg.numAttrs = 1;
  // fall back to streaming, then to one CTA per row, if a configuration does not fit
  for (;;) {
    attribute[0].val.clusterDim.x = (unsigned)S;
    cfg.gridDim = dim3((unsigned)S, 1, 1);  // one cluster, for the occupancy query
    cfg.dynamicSmemBytes = smem;
    if (S == 1 && smem == 0) break;
    if (active_clusters(kernel, cfg) > 0) break;
    if (smem > 0) smem = 0;
    else S = 1;
  }
  if (a.rows > (int64_t)0x7fffffff / S) throw std::invalid_argument(std::string(M::kName) + ": too many rows for one launch");
  cfg.gridDim = dim3((unsigned)(a.rows * S), 1, 1);
  sx_check(cudaLaunchKernelEx(&cfg, kernel, static_cast<const T*>(a.x), static_cast<const T*>(a.y),
                              static_cast<const T*>(a.weight), a.target, static_cast<T*>(a.out), a.loss, a.lse,
                              a.denom, a.factor, a.status, a.rows, a.cols, a.ignore_index, smem > 0,
                              a.lse_of_ignored, a.prm),
           "launch of the rows kernel");
}

template <typename M, typename T, size_t I = 0>
static void launch_case(int64_t which, const RowsArgs<M>& a) {
  using Cases = typename M::Cases;
  if constexpr (I < std::tuple_size<Cases>::value) {
    if (which == (int64_t)I) return launch_rows<M, T, std::tuple_element_t<I, Cases>>(a);
    return launch_case<M, T, I + 1>(which, a);
  } else {
    throw std::invalid_argument(std::string(M::kName) + ": no such case");
  }
}

template <template <typename> class F, typename... Args>
static void with_dtype(const char* name, int64_t dtype, Args&&... args) {
  switch (dtype) {
    case 0: return F<float>::run(args...);
    case 1: return F<__half>::run(args...);
    case 2: return F<__nv_bfloat16>::run(args...);
    default: throw std::invalid_argument(std::string(name) + ": dtype must be 0 (float32), 1 (float16) or 2 (bfloat16)");
  }
}

template <typename M> struct RunRows {
  template <typename T> struct For {
    static void run(int64_t which, const RowsArgs<M>& a) { launch_case<M, T>(which, a); }
  };
};

template <typename T> struct RunPrepare {
  static void run(const int64_t* target, const void* weight, int64_t rows, int64_t cols, int64_t ignore_index,
                  float* total_weight, unsigned long long* status, cudaStream_t stream) {
    prepare_kernel<T><<<1, 1024, 0, stream>>>(target, static_cast<const T*>(weight), rows, cols, ignore_index,
                                              total_weight, status);
    sx_check(cudaGetLastError(), "launch of the prepare kernel");
  }
};

template <typename T> struct RunScale {
  static void run(void* grad, const float* grad_output, int64_t go_stride, int64_t rows, int64_t cols,
                  cudaStream_t stream) {
    const int64_t most = 8 * (int64_t)sx_device_attribute(cudaDevAttrMultiProcessorCount);
    const unsigned blocks = (unsigned)(rows < most ? rows : most);
    scale_rows_kernel<T><<<blocks, kThreads, 0, stream>>>(static_cast<T*>(grad), grad_output, go_stride, rows, cols);
    sx_check(cudaGetLastError(), "launch of the scale kernel");
  }
};

// --- the C-linkage host functions of a module M (SYMXENT_CUDA_ROWS_MODULE) -------------------------
template <typename M> struct Rows {
  static void rows(int64_t case_index, int64_t dtype, const void* x, const void* y, const void* weight,
                   const int64_t* target, void* out, float* loss, float* lse, const float* denom, double factor,
                   unsigned long long* status, int64_t rows, int64_t cols, int64_t ignore_index,
                   bool lse_of_ignored, const double* params, int64_t num_params, void* stream) {
    if (rows <= 0 || cols <= 0) return;
    const RowsArgs<M> a{x, y, weight, target, out, loss, lse, denom, (float)factor, status, rows, cols,
                        ignore_index, lse_of_ignored, module_params<M>(params, num_params),
                        static_cast<cudaStream_t>(stream)};
    with_dtype<RunRows<M>::template For>(M::kName, dtype, case_index, a);
  }
  static void prepare(int64_t dtype, const int64_t* target, const void* weight, int64_t rows, int64_t cols,
                      int64_t ignore_index, float* total_weight, unsigned long long* status, void* stream) {
    with_dtype<RunPrepare>(M::kName, dtype, target, weight, rows, cols, ignore_index, total_weight, status,
                           static_cast<cudaStream_t>(stream));
  }
  static void scale_rows(int64_t dtype, void* grad, const float* grad_output, int64_t go_stride, int64_t rows,
                         int64_t cols, void* stream) {
    if (rows <= 0 || cols <= 0) return;
    with_dtype<RunScale>(M::kName, dtype, grad, grad_output, go_stride, rows, cols, static_cast<cudaStream_t>(stream));
  }
};
#endif  // SYMXENT_CUDA_HOST_CHECK

}  // namespace symxent_cuda

#ifndef SYMXENT_CUDA_HOST_CHECK
// the module's host API: declared (api.h), then defined over the skeleton
#define SYMXENT_CUDA_ROWS_MODULE(NAME, M)                                                                     \
  SYMXENT_CUDA_ROWS_API(NAME)                                                                                 \
  extern "C" void sx_##NAME##_rows(int64_t case_index, int64_t dtype, const void* x, const void* y,         \
                                   const void* weight, const int64_t* target, void* out, float* loss,       \
                                   float* lse, const float* denom, double factor, unsigned long long* status, \
                                   int64_t rows, int64_t cols, int64_t ignore_index, bool lse_of_ignored,   \
                                   const double* params, int64_t num_params, void* stream) {                \
    symxent_cuda::Rows<M>::rows(case_index, dtype, x, y, weight, target, out, loss, lse, denom, factor, status, \
                                rows, cols, ignore_index, lse_of_ignored, params, num_params, stream);      \
  }                                                                                                          \
  extern "C" void sx_##NAME##_prepare(int64_t dtype, const int64_t* target, const void* weight, int64_t rows, \
                                      int64_t cols, int64_t ignore_index, float* total_weight,             \
                                      unsigned long long* status, void* stream) {                           \
    symxent_cuda::Rows<M>::prepare(dtype, target, weight, rows, cols, ignore_index, total_weight, status, stream); \
  }                                                                                                          \
  extern "C" void sx_##NAME##_scale_rows(int64_t dtype, void* grad, const float* grad_output, int64_t go_stride, \
                                         int64_t rows, int64_t cols, void* stream) {                        \
    symxent_cuda::Rows<M>::scale_rows(dtype, grad, grad_output, go_stride, rows, cols, stream);             \
  }
#else
#define SYMXENT_CUDA_ROWS_MODULE(NAME, M)
#endif

#endif  // SYMXENT_CUDA_ROWS_CUH
