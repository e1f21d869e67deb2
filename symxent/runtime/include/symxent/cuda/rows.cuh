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
// (S = 1, 2, 4, 8 or 16, the smallest that makes a CTA's share of shared memory <= 64 KB). Each CTA copies its
// share of the row (and of the second row and the class vector, when the case reads them) into shared memory
// with 16-byte cp.async, then runs three passes over it:
//   1. the row maximum m of the case's score (merged over the cluster: a max is exact in any order);
//   2. the class-axis sums at the shift m (no running maximum, nothing to rescale), each element's value that
//      the output reuses (exp(z_a - m)) kept in shared memory in fp32: one exp per element;
//   3. the output (gradient or map) from shared memory, the row's factors computed once (dense_terms), the
//      target class patched after the loop by the thread that owns it.
// The sums are merged over the warps, the CTA and the cluster (through distributed shared memory) by the same
// butterfly in every CTA: deterministic, and the same bits everywhere. Cluster barriers are split: arrive.release
// when a CTA's partial is written, wait.acquire before the others' are read, arrive.release once they are, and the
// last wait only before the CTA exits. A row too long for the cluster's shared memory is streamed three times
// instead (the later reads mostly hit L2). Offsets are 64-bit; a scalar head and tail handle rows that do not
// start or end on 16 bytes.
//
// emulate.h (the host) gives the GPU's part by host threads: compiled after it, the kernel runs as it is on the
// host (tests/test_cuda_codegen.py), launched by emulate_rows below.
#ifndef SYMXENT_CUDA_ROWS_CUH
#define SYMXENT_CUDA_ROWS_CUH

#include <cmath>
#include <cstdint>
#include <tuple>
#include <type_traits>
#include <stdexcept>
#include <string>
#ifndef SYMXENT_CUDA_EMULATE
#include <map>
#include <mutex>
#include <set>
#include <utility>
#include "symxent/cuda/api.h"
#include "symxent/cuda/common.cuh"
#include "symxent/cuda/threads.cuh"
#endif

namespace symxent_cuda {

constexpr int kThreads = 256;               // threads per CTA
constexpr int kWarps = kThreads / 32;
constexpr int kMaxCluster = 16;             // CTAs per row at most (above 8: a non-portable cluster size)
constexpr int kPortableCluster = 8;
constexpr int64_t kSliceBytes = 64 * 1024;  // aim for at most this much shared memory per CTA

// what every printed function may use about the row
// (NG: the most gathers, NS: the most sums of any case of the module)
template <int NG, int NS> struct RowStats {
  static constexpr int kMaxGathers = NG, kMaxSums = NS;
  float m;      // the row maximum of the case's score (0 if the case has none or all are -inf)
  float lse;    // m + log(sum of exp(score - m)), when the case has that sum
  float n;      // number of classes
  float g[NG];  // values gathered at the target class
  float s[NS];  // class-axis sums (at the shift m)
};

// What a module M gives the skeleton besides kName, kParams and params(values): derive from this.
template <typename RowT, typename ParamsT, typename... CaseTs> struct RowsModule {
  using Row = RowT;
  using Params = ParamsT;
  using Cases = std::tuple<CaseTs...>;
  static constexpr int kMaxGathers = Row::kMaxGathers, kMaxSums = Row::kMaxSums;
};

// the inputs a pass reads (Case::kReads*): bits of the row x, the second row y, the class vector w
constexpr int kReadX = 1, kReadY = 2, kReadW = 4;

// --- a case: the printed math of one generated function -------------------------------------------
// A generated Case struct derives from RowCase<Row, Params> and defines what its math needs:
//   kIndexTarget   each row has a target class c          kSecondRow  a second (R, C) input y
//   kHasMax        a row maximum m (the shift of the exponentials)
//   kSums          the number of class-axis sums          kLseSum     the sum of exp(score - m): lse = m + log(s) (-1: none)
//   kScatter       a value is added at the target class
//   kCache         the output reuses a value of the sums pass per element (e: exp(z_a - m)), kept in shared memory
//   kReadsScore / kReadsSums / kReadsDense   the inputs each pass reads (kReadX | kReadY | kReadW)
//   kHoisted0/1/2  loop-invariant values of the score / sums / output pass, computed once per row (*_terms)
//   gather         the values at the target class c (row.g)
//   score          the element whose maximum over the row is m
//   sums           one element's term of each class-axis sum at the shift row.m (s), and its value e
//   loss           the row's loss from its statistics
//   element        e again, from the output pass's terms (a row streamed from global memory has no cache)
//   dense          one output element (gradient or map), multiplied by the call's scale (dense_terms has it)
//   scatter        what the output gains at the target class (before the scale)
// The defaults below are what a case without that piece computes (nothing), so a Case prints only its math.
template <typename Row, typename Params> struct RowCase {
  static constexpr bool kIndexTarget = false, kSecondRow = false, kHasMax = false, kScatter = false, kCache = false;
  static constexpr int kSums = 0, kLseSum = -1, kHoisted0 = 0, kHoisted1 = 0, kHoisted2 = 0;
  static constexpr int kReadsScore = 0, kReadsSums = 0, kReadsDense = 0;
  template <typename T>
  __device__ static __forceinline__ void gather(const T*, const T*, const T*, int64_t, float*) {}
  __device__ static __forceinline__ void score_terms(const Row&, const Params&, float*) {}
  __device__ static __forceinline__ float score(float, float, float, const Row&, const float*, const Params&) {
    return 0.0f;
  }
  __device__ static __forceinline__ void sums_terms(const Row&, const Params&, float*) {}
  __device__ static __forceinline__ void sums(float, float, float, const Row&, const float*, const Params&, float*,
                                              float& e) {
    e = 0.0f;
  }
  __device__ static __forceinline__ float loss(const Row&, const Params&) { return 0.0f; }
  __device__ static __forceinline__ void dense_terms(const Row&, const Params&, float, float*) {}
  __device__ static __forceinline__ float element(float, float, float, const Row&, const float*, const Params&) {
    return 0.0f;
  }
  __device__ static __forceinline__ float dense(float, float, float, float, const Row&, const float*, const Params&) {
    return 0.0f;
  }
  __device__ static __forceinline__ float scatter(const Row&, const Params&) { return 0.0f; }
};

// the shift the sums are evaluated at: the row maximum, or 0 when every score is -inf
__device__ __forceinline__ float shift_of(float m) { return m == -INFINITY ? 0.0f : m; }

// column of the k-th scalar (unaligned) element of a row: the head [0, head), then the tail
__device__ __forceinline__ int64_t scalar_column(int k, int64_t head, int64_t tail, int64_t cols) {
  return k < head ? (int64_t)k : cols - tail + (k - head);
}

// +0.0 (in every dtype) over this CTA's share of an output row: its packs, and rank 0's head and tail scalars
template <typename T>
__device__ __forceinline__ void zero_share(T* outr, int64_t head, int64_t tail, int64_t cols, int64_t v0, int mine,
                                           int scalars, int tid) {
  const uint4 zero = make_uint4(0u, 0u, 0u, 0u);
  uint4* ov = packs(outr + head) + v0;
  for (int v = tid; v < mine; v += kThreads) ov[v] = zero;
  if (tid < scalars) outr[scalar_column(tid, head, tail, cols)] = from_float<T>(0.0f);
}

// what the CTAs of a cluster share (static shared memory; cta_max and cta_sums are read by the other CTAs)
template <typename Row, int NS> struct RowsShared {
  float warp_max[kWarps];
  float warp_sums[kWarps][NS];
  float cta_max;
  float cta_sums[NS];
  Row row;
};

// The dynamic shared memory of a CTA: its share of `per` packs of the row x, of the second row y and of the
// class vector w (each in T, in that order, the ones a case reads), then each element's cached value e (fp32).
template <typename T, typename Case> struct ShareLayout {
  static constexpr int VEC = Vec<T>::N;
  static constexpr int kAll = Case::kReadsScore | Case::kReadsSums | Case::kReadsDense;
  static constexpr bool kY = Case::kSecondRow && (kAll & kReadY), kW = (kAll & kReadW) != 0;
  // bytes for `per` packs; `with_e`: the output pass reuses the sums pass's values
  __host__ __device__ static int64_t bytes(int64_t per, bool with_e) {
    return per * 16 * (1 + (kY ? 1 : 0) + (kW ? 1 : 0)) + (with_e ? per * VEC * 4 : 0);
  }
  uint4* x;
  uint4* y;
  uint4* w;
  float4* e;
  __device__ ShareLayout(unsigned char* base, int64_t per) {
    x = reinterpret_cast<uint4*>(base);
    y = kY ? x + per : nullptr;
    w = kW ? x + per * (kY ? 2 : 1) : nullptr;
    e = reinterpret_cast<float4*>(x + per * (1 + (kY ? 1 : 0) + (kW ? 1 : 0)));
  }
};

// a CTA's packs of the row's inputs, in shared memory (its share) and in global memory
template <typename T, typename Case> struct RowInputs {
  static constexpr int VEC = Vec<T>::N;
  ShareLayout<T, Case> share;
  const uint4* xv;    // the CTA's first pack of x in global memory
  const uint4* yv;    // and of y
  const T* weight;    // the class vector (nullptr: all ones)
  int64_t first_col;  // the column of the CTA's first pack
  bool w_aligned;     // the class vector's packs line up with the row's
  // pack v's inputs (those in READS: kReadX | kReadY | kReadW) from shared memory (kCached) or global memory
  template <bool kCached, int READS>
  __device__ __forceinline__ void load(int v, float (&xf)[VEC], float (&yf)[VEC], float (&wf)[VEC]) const {
    if constexpr ((READS & kReadX) != 0) {
      if constexpr (kCached) Vec<T>::unpack(load_shared_pack(share.x + v), xf);
      else Vec<T>::unpack(load_pack(xv + v), xf);
    }
    if constexpr (Case::kSecondRow && (READS & kReadY) != 0) {
      if constexpr (kCached) Vec<T>::unpack(load_shared_pack(share.y + v), yf);
      else Vec<T>::unpack(load_pack(yv + v), yf);
    }
    if constexpr ((READS & kReadW) != 0) {
      if constexpr (kCached) Vec<T>::unpack(load_shared_pack(share.w + v), wf);
      else load_classes(weight, first_col + (int64_t)v * VEC, w_aligned, wf);
    }
  }
};

// the packs a pass handles at a time (their loads in flight together): four of one input from shared memory, else
// two (a class vector streamed from global memory may take a scalar load per element; more would not fit in 64
// registers)
__host__ __device__ constexpr int packs_at_a_time(bool cached, int reads) { return cached && (reads & (reads - 1)) == 0 ? 4 : 2; }

// f(v) for this thread's packs v = tid, tid + kThreads, ... < mine, K at a time, then one at a time
template <int K, typename F> __device__ __forceinline__ void each_pack(int tid, int mine, F&& f) {
  int v = tid;
#pragma unroll 1
  for (; v + (K - 1) * kThreads < mine; v += K * kThreads) {
#pragma unroll
    for (int k = 0; k < K; ++k) f(v + k * kThreads);
  }
#pragma unroll 1
  for (; v < mine; v += kThreads) f(v);
}

// the maximum of v over the warp (every lane gets it)
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, sx_shfl_xor(v, offset));
  return v;
}

// the sums over the warp, by a butterfly: every lane gets the same bits
template <int NS> __device__ __forceinline__ void warp_sums(float (&s)[NS]) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
#pragma unroll
    for (int j = 0; j < NS; ++j) s[j] += sx_shfl_xor(s[j], offset);
  }
}

// --- the kernel: one row per cluster ------------------------------------------------------------
// x and out may be the same buffer (in-place gradient): no __restrict__ on either. `row0`: the first row of this
// launch (for the error report only: the pointers are this launch's). `cache_row`: the share fits in shared memory.
template <typename M, typename T, typename Case>
__global__ void __launch_bounds__(kThreads)
rows_kernel(const T* x, const T* y, const T* weight, const int64_t* target, T* out, float* loss_out,
            float* lse_out, const float* denom, float factor, unsigned long long* status, int64_t row0, int64_t rows,
            int64_t cols, int64_t ignore_index, bool cache_row, bool lse_of_ignored, typename M::Params prm) {
  using Row = typename M::Row;
  using Layout = ShareLayout<T, Case>;
  constexpr int VEC = Vec<T>::N;  // values per 16-byte pack
  constexpr int NS = Case::kSums > 0 ? Case::kSums : 1;
  constexpr bool kStats = Case::kHasMax || Case::kSums > 0;  // passes before the output
  using Shared = RowsShared<Row, NS>;
  SX_DYNAMIC_SMEM(smem_raw);
  SX_SHARED(Shared, sh);

  const int S = sx_cluster_size();
  const int rank = sx_cluster_rank();
  const int tid = sx_thread();
  const int64_t r = sx_block() / S;
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
      if (rank == 0 && tid == 0) sx_report_row(status, (unsigned long long)(row0 + r));
      skip = true;
    } else {
      c = t;
    }
  }
  if (skip && !lse_of_ignored) {  // the whole cluster takes this branch: no cluster barrier pending
    if (outr != nullptr) zero_share(outr, head, tail, cols, v0, mine, scalars, tid);
    if (rank == 0 && tid == 0) {
      if (loss_out != nullptr) loss_out[r] = 0.0f;
      if (lse_out != nullptr) lse_out[r] = 0.0f;
    }
    return;
  }

  // start copying this CTA's share of the row (and of y and w) into shared memory
  const bool cached = cache_row && kStats;
  const bool keep = cached && Case::kCache && outr != nullptr && !skip;  // the sums pass stores e
  const Layout share(smem_raw, per);
  if (cached) {
    for (int v = tid; v < mine; v += kThreads) sx_copy_async(&share.x[v], &xv[v]);
    if constexpr (Layout::kY) for (int v = tid; v < mine; v += kThreads) sx_copy_async(&share.y[v], &yv[v]);
    if constexpr (Layout::kW) {
      if (weight != nullptr && w_aligned) {
        for (int v = tid; v < mine; v += kThreads) sx_copy_async(&share.w[v], packs(weight) + v0 + v);
      } else {  // absent (all ones) or not on the row's 16-byte grid: element by element
        for (int v = tid; v < mine; v += kThreads) {
          float f[VEC];
#pragma unroll
          for (int i = 0; i < VEC; ++i) f[i] = weight != nullptr ? to_float<T>(weight[head + (v0 + v) * VEC + i]) : 1.0f;
          share.w[v] = Vec<T>::pack(f);
        }
      }
    }
    sx_copy_commit();
  }
  // meanwhile: values at the target class (read before any CTA of the cluster can write the row in place: every
  // output store comes after the cluster's sums barrier)
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
    sh.row = init;
  }
  if (cached) sx_copy_wait();
  sx_sync();
  Row row = sh.row;
  if (!kStats && S > 1) {  // no barrier below: every CTA gathers before any writes the row (in place)
    sx_cluster_arrive_release();
    sx_cluster_wait();
  }

  const RowInputs<T, Case> in{share, xv, yv, weight, head + v0 * VEC, w_aligned};
  // the scalar's inputs (every pass reads them from global memory: only rank 0's threads tid < scalars have one)
  const int64_t scol = tid < scalars ? scalar_column(tid, head, tail, cols) : 0;
  auto scalar_inputs = [&](float& xs, float& ys, float& ws) {
    xs = to_float<T>(xr[scol]);
    ys = Case::kSecondRow ? to_float<T>(yr[scol]) : 0.0f;
    ws = weight != nullptr ? to_float<T>(weight[scol]) : 1.0f;
  };

  // pass 1: the row maximum of the scores
  if constexpr (Case::kHasMax) {
    float h0[Case::kHoisted0 > 0 ? Case::kHoisted0 : 1];
    Case::score_terms(row, prm, h0);
    float top = -INFINITY;
    auto pass = [&](auto cached_tag) {
      each_pack<packs_at_a_time(decltype(cached_tag)::value, Case::kReadsScore)>(tid, mine, [&](int v) {
        float xf[VEC] = {}, yf[VEC] = {}, wf[VEC] = {};
        in.template load<decltype(cached_tag)::value, Case::kReadsScore>(v, xf, yf, wf);
#pragma unroll
        for (int i = 0; i < VEC; ++i) top = fmaxf(top, Case::score(xf[i], yf[i], wf[i], row, h0, prm));
      });
    };
    if (cached) pass(std::true_type{});
    else pass(std::false_type{});
    if (tid < scalars) {
      float xs, ys, ws;
      scalar_inputs(xs, ys, ws);
      top = fmaxf(top, Case::score(xs, ys, ws, row, h0, prm));
    }
    top = warp_max(top);
    if ((tid & 31) == 0) sh.warp_max[tid >> 5] = top;
    sx_sync();
    top = sh.warp_max[0];
#pragma unroll
    for (int k = 1; k < kWarps; ++k) top = fmaxf(top, sh.warp_max[k]);
    if (S > 1) {  // uniform over the cluster
      if (tid == 0) sh.cta_max = top;
      sx_cluster_arrive_release();
      sx_cluster_wait();
      for (int q = 0; q < S; ++q) top = fmaxf(top, sx_remote(&sh, q)->cta_max);
    }
    row.m = shift_of(top);
  }

  // pass 2: the class-axis sums at the shift row.m (and each element's value e for the output pass)
  float e_scalar = 0.0f;
  if constexpr (Case::kSums > 0) {
    float h1[Case::kHoisted1 > 0 ? Case::kHoisted1 : 1];
    Case::sums_terms(row, prm, h1);
    float s[NS];
#pragma unroll
    for (int j = 0; j < NS; ++j) s[j] = 0.0f;
    auto pass = [&](auto cached_tag, auto keep_tag) {
      each_pack<packs_at_a_time(decltype(cached_tag)::value, Case::kReadsSums)>(tid, mine, [&](int v) {
        float xf[VEC] = {}, yf[VEC] = {}, wf[VEC] = {}, e[VEC];
        in.template load<decltype(cached_tag)::value, Case::kReadsSums>(v, xf, yf, wf);
#pragma unroll
        for (int i = 0; i < VEC; ++i) Case::sums(xf[i], yf[i], wf[i], row, h1, prm, s, e[i]);
        if constexpr (decltype(keep_tag)::value) {
#pragma unroll
          for (int k = 0; k < VEC / 4; ++k) share.e[v * (VEC / 4) + k] = make_float4(e[4 * k], e[4 * k + 1], e[4 * k + 2], e[4 * k + 3]);
        }
      });
    };
    if (keep) pass(std::true_type{}, std::true_type{});
    else if (cached) pass(std::true_type{}, std::false_type{});
    else pass(std::false_type{}, std::false_type{});
    if (tid < scalars) {
      float xs, ys, ws;
      scalar_inputs(xs, ys, ws);
      Case::sums(xs, ys, ws, row, h1, prm, s, e_scalar);
    }
    // the sums of the CTA, then of the cluster: butterflies, the same in every CTA
    warp_sums(s);
    if ((tid & 31) == 0) {
#pragma unroll
      for (int j = 0; j < NS; ++j) sh.warp_sums[tid >> 5][j] = s[j];
    }
    sx_sync();
    if (tid < 32) {
#pragma unroll
      for (int j = 0; j < NS; ++j) s[j] = tid < kWarps ? sh.warp_sums[tid][j] : 0.0f;
      warp_sums(s);
      if (S > 1 && tid == 0) {
#pragma unroll
        for (int j = 0; j < NS; ++j) sh.cta_sums[j] = s[j];
      }
    }
    if (S > 1) {  // uniform over the cluster
      sx_cluster_arrive_release();
      sx_cluster_wait();
      if (tid < 32) {
        const Shared* other = sx_remote(&sh, tid < S ? tid : 0);
#pragma unroll
        for (int j = 0; j < NS; ++j) s[j] = tid < S ? other->cta_sums[j] : 0.0f;
        warp_sums(s);
      }
    }
    if (tid == 0) {
#pragma unroll
      for (int j = 0; j < M::kMaxSums; ++j) row.s[j] = j < Case::kSums ? s[j] : 0.0f;
      sh.row = row;
    }
    sx_sync();
    row = sh.row;
  }
  if constexpr (Case::kLseSum >= 0) row.lse = row.m + logf(row.s[Case::kLseSum >= 0 ? Case::kLseSum : 0]);
  if (rank == 0 && tid == 0) {
    if (lse_out != nullptr) lse_out[r] = row.lse;
    if (loss_out != nullptr) loss_out[r] = skip ? 0.0f : Case::loss(row, prm);
  }
  const bool exchanged = S > 1 && kStats;
  // done reading the other CTAs' shared memory. A release, not .relaxed: a relaxed arrive does not order the loads
  // before it, and a CTA that has not used a remote value yet would let its owner exit under the load
  if (exchanged) sx_cluster_arrive_release();

  // pass 3: the output (gradient or map) of this CTA's share
  if (outr != nullptr) {
    uint4* ov = packs(outr + head) + v0;
    if (skip) {  // an ignored row whose lse is asked for: zero output
      zero_share(outr, head, tail, cols, v0, mine, scalars, tid);
    } else {
      const float scale = denom != nullptr ? factor / *denom : factor;
      const float at_target = Case::kScatter ? scale * Case::scatter(row, prm) : 0.0f;  // added at column c
      float h2[Case::kHoisted2 > 0 ? Case::kHoisted2 : 1];
      Case::dense_terms(row, prm, scale, h2);
      // the pack that holds the target column, if this CTA has it (-1: none), and its lane
      int patch_pack = -1, patch_lane = 0;
      if (Case::kScatter && c >= head && c < head + nvec * VEC) {
        const int64_t p = (c - head) / VEC - v0;
        if (p >= 0 && p < mine) {
          patch_pack = (int)p;
          patch_lane = (int)((c - head) % VEC);
        }
      }
      auto dense_pack = [&](auto cached_tag, auto keep_tag, int v, bool patch) {
        constexpr bool kCached = decltype(cached_tag)::value;
        float xf[VEC] = {}, yf[VEC] = {}, wf[VEC] = {}, e[VEC] = {}, o[VEC];
        if constexpr (decltype(keep_tag)::value) {
#pragma unroll
          for (int k = 0; k < VEC / 4; ++k) {
            const float4 q = share.e[v * (VEC / 4) + k];
            e[4 * k] = q.x; e[4 * k + 1] = q.y; e[4 * k + 2] = q.z; e[4 * k + 3] = q.w;
          }
          in.template load<kCached, Case::kReadsDense>(v, xf, yf, wf);
        } else {  // e again from the inputs
          constexpr int kReads = Case::kCache ? (Case::kReadsDense | Case::kReadsSums) : Case::kReadsDense;
          in.template load<kCached, kReads>(v, xf, yf, wf);
          if constexpr (Case::kCache) {
#pragma unroll
            for (int i = 0; i < VEC; ++i) e[i] = Case::element(xf[i], yf[i], wf[i], row, h2, prm);
          }
        }
#pragma unroll
        for (int i = 0; i < VEC; ++i) o[i] = Case::dense(xf[i], yf[i], wf[i], e[i], row, h2, prm);
        if (patch) {
#pragma unroll
          for (int i = 0; i < VEC; ++i) o[i] += i == patch_lane ? at_target : 0.0f;
        }
        ov[v] = Vec<T>::pack(o);
      };
      if (keep) {
        each_pack<packs_at_a_time(true, Case::kReadsDense)>(tid, mine, [&](int v) { dense_pack(std::true_type{}, std::true_type{}, v, false); });
        if (patch_pack >= 0 && patch_pack % kThreads == tid) dense_pack(std::true_type{}, std::true_type{}, patch_pack, true);
      } else if (cached) {
        each_pack<packs_at_a_time(true, Case::kReadsDense | Case::kReadsSums)>(tid, mine, [&](int v) { dense_pack(std::true_type{}, std::false_type{}, v, false); });
        if (patch_pack >= 0 && patch_pack % kThreads == tid) dense_pack(std::true_type{}, std::false_type{}, patch_pack, true);
      } else {  // streamed: the row may be overwritten in place, so the target's pack is patched as it is written
        each_pack<packs_at_a_time(false, 0)>(tid, mine, [&](int v) { dense_pack(std::false_type{}, std::false_type{}, v, v == patch_pack); });
      }
      if (tid < scalars) {
        float xs, ys, ws;
        scalar_inputs(xs, ys, ws);
        const float es = Case::kSums > 0 ? e_scalar : Case::element(xs, ys, ws, row, h2, prm);
        float value = Case::dense(xs, ys, ws, es, row, h2, prm);
        if (Case::kScatter && scol == c) value += at_target;
        outr[scol] = from_float<T>(value);
      }
    }
  }
  if (exchanged) sx_cluster_wait();  // no CTA exits while another may still read its shared memory
}

#ifndef SYMXENT_CUDA_EMULATE
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

// once per (kernel, device): allow the largest dynamic shared memory it may ask for (a launch never meets a smaller
// limit that another host thread set for its own configuration in the meantime) and clusters above 8 CTAs
template <typename Kernel>
static void configure_kernel(Kernel kernel, size_t largest) {
  int device = 0;
  sx_check(cudaGetDevice(&device), "cudaGetDevice");
  static std::set<std::pair<const void*, int>> done;
  std::lock_guard<std::mutex> guard(launch_cache_lock());
  if (!done.insert(std::make_pair((const void*)kernel, device)).second) return;
  sx_check(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)largest),
           "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)");
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1) != cudaSuccess) {
    (void)cudaGetLastError();  // not supported here: the occupancy query then refuses 16 and the launch takes 8
  }
}

template <typename M, typename T, typename Case>
static void launch_rows(const RowsArgs<M>& a) {
  auto kernel = rows_kernel<M, T, Case>;
  using Layout = ShareLayout<T, Case>;
  constexpr int VEC = Vec<T>::N;
  constexpr bool kStats = Case::kHasMax || Case::kSums > 0;
  // shared memory for a CTA's share of S (only when there are passes before the output)
  const bool with_e = Case::kCache && a.out != nullptr;
  auto share = [&](int S) -> int64_t { return kStats ? Layout::bytes((a.cols / VEC + S - 1) / S, with_e) : 0; };
  // cluster size: the smallest power of two that cuts a row's share to <= kSliceBytes (a row without statistics
  // is only split for parallelism: up to the portable size)
  const int64_t row_bytes = a.cols * (int64_t)sizeof(T);
  int S = 1;
  if (kStats) {
    while (S < kMaxCluster && share(S) > kSliceBytes) S *= 2;
  } else {
    while (S < kPortableCluster && row_bytes > S * kSliceBytes) S *= 2;
  }
  cudaFuncAttributes attributes;
  sx_check(cudaFuncGetAttributes(&attributes, kernel), "cudaFuncGetAttributes");
  const size_t optin = (size_t)sx_device_attribute(cudaDevAttrMaxSharedMemoryPerBlockOptin);
  auto fitting = [&](int size) -> size_t {  // 0: too long for shared memory, stream the row
    const size_t bytes = (size_t)share(size);
    return bytes + attributes.sharedSizeBytes > optin ? 0 : bytes;
  };
  size_t smem = fitting(S);
  configure_kernel(kernel, optin - attributes.sharedSizeBytes);

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
  // fall back to the portable cluster size, then to streaming, then to one CTA per row, if a configuration does not fit
  for (;;) {
    attribute[0].val.clusterDim.x = (unsigned)S;
    cfg.gridDim = dim3((unsigned)S, 1, 1);  // one cluster, for the occupancy query
    cfg.dynamicSmemBytes = smem;
    if (S == 1 && smem == 0) break;
    if (active_clusters(kernel, cfg) > 0) break;
    if (S > kPortableCluster) {
      S = kPortableCluster;
      smem = fitting(S);
    } else if (smem > 0) {
      smem = 0;
    } else {
      S = 1;
    }
  }
  // at most 2^31 - 1 CTAs per launch: more rows go in several launches, each starting at a multiple of VEC rows (the
  // kernel finds a row's 16-byte boundaries from its pointer, which must stay aligned: r0 * cols % VEC == 0)
  const int64_t per_launch = ((int64_t)0x7fffffff / S) / VEC * VEC;
  for (int64_t r0 = 0; r0 < a.rows; r0 += per_launch) {
    const int64_t n = a.rows - r0 < per_launch ? a.rows - r0 : per_launch;
    const int64_t offset = r0 * a.cols;
    cfg.gridDim = dim3((unsigned)(n * S), 1, 1);
    sx_check(cudaLaunchKernelEx(&cfg, kernel, static_cast<const T*>(a.x) + offset,
                                a.y ? static_cast<const T*>(a.y) + offset : nullptr, static_cast<const T*>(a.weight),
                                a.target ? a.target + r0 : nullptr, a.out ? static_cast<T*>(a.out) + offset : nullptr,
                                a.loss ? a.loss + r0 : nullptr, a.lse ? a.lse + r0 : nullptr, a.denom, a.factor,
                                a.status, r0, n, a.cols, a.ignore_index, smem > 0, a.lse_of_ignored, a.prm),
             "launch of the rows kernel");
  }
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
#else  // SYMXENT_CUDA_EMULATE: the kernel on host threads, configured as launch_rows would (or as a test asks)

// run rows_kernel<M, T, Case> over `rows` rows in clusters of S CTAs; `cache_row`: shares in shared memory
template <typename M, typename T, typename Case>
void emulate_rows(const T* x, const T* y, const T* weight, const int64_t* target, T* out, float* loss, float* lse,
                  const float* denom, float factor, unsigned long long* status, int64_t rows, int64_t cols,
                  int64_t ignore_index, bool lse_of_ignored, typename M::Params prm, int S, bool cache_row) {
  constexpr int VEC = Vec<T>::N;
  const int64_t per = (cols / VEC + S - 1) / S;
  const size_t smem = cache_row ? (size_t)ShareLayout<T, Case>::bytes(per, Case::kCache && out != nullptr) : 0;
  emulate::launch(rows * S, S, kThreads, smem, [&] {
    rows_kernel<M, T, Case>(x, y, weight, target, out, loss, lse, denom, factor, status, 0, rows, cols, ignore_index,
                            cache_row, lse_of_ignored, prm);
  });
}
#endif  // SYMXENT_CUDA_EMULATE

}  // namespace symxent_cuda

#ifndef SYMXENT_CUDA_EMULATE
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
