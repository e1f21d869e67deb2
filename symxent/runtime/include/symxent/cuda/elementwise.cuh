// symxent CUDA kernels: the skeleton of every elementwise kernel (bce, bce_with_logits, kl_div, ...): a
// grid-stride loop and block sums. Part of the runtime (symxent/runtime/include, package data). A
// generated NAME.cu includes it, prints its math into Case structs and a module struct M, and
// instantiates the skeleton with SYMXENT_CUDA_ELEMENTWISE_MODULE(NAME, sx_NAME::Module).
//
// M (deriving from ElementwiseModule<kInputs, Params, Case0, ...>) provides: kName, kInputs (element
// arguments, at most 4), kParams, Params, Cases (std::tuple of the Case structs, selected by index) and
// static Params params(const double* values). Each block
// writes the fp32 sum of its losses to partial[block] (a fixed grid: the reduction is deterministic
// on a given device). With SYMXENT_CUDA_EMULATE defined only ElementwiseModule is declared (the
// printed Case structs need nothing else from here) and the module macro expands to nothing.
#ifndef SYMXENT_CUDA_ELEMENTWISE_CUH
#define SYMXENT_CUDA_ELEMENTWISE_CUH

#include <cstdint>
#include <tuple>

namespace symxent_cuda {
// What a module M gives the skeleton besides kName, kParams and params(values): derive from this.
template <int K, typename ParamsT, typename... CaseTs> struct ElementwiseModule {
  static constexpr int kInputs = K;
  using Params = ParamsT;
  using Cases = std::tuple<CaseTs...>;
};
}  // namespace symxent_cuda

#ifndef SYMXENT_CUDA_EMULATE
#include <stdexcept>
#include <string>
#include <type_traits>
#include "symxent/cuda/api.h"
#include "symxent/cuda/common.cuh"

namespace symxent_cuda {
namespace elementwise {

constexpr int kThreads = 256;

template <typename T, int K> struct Inputs {
  const T* p[K];
  int64_t period[K];
};

template <typename M, typename T, typename Case>
__global__ void __launch_bounds__(kThreads)
elementwise_kernel(Inputs<T, M::kInputs> in, T* loss_out, float* partial_out, T* grad_out, float factor,
                   int64_t numel, typename M::Params prm) {
  constexpr int kInputs = M::kInputs;
  __shared__ float warp_sum[kThreads / 32];
  float acc = 0.0f;
  const int64_t stride = (int64_t)gridDim.x * kThreads;
  for (int64_t i = (int64_t)blockIdx.x * kThreads + threadIdx.x; i < numel; i += stride) {
    float v[kInputs];
#pragma unroll
    for (int j = 0; j < kInputs; ++j) {
      const int64_t period = in.period[j];
      v[j] = to_float<T>(in.p[j][period == numel ? i : i % period]);
    }
    const float loss = Case::loss(v, prm);  // fp32, rounded once
    acc += loss;
    if (loss_out != nullptr) loss_out[i] = from_float<T>(loss);
    if (grad_out != nullptr) grad_out[i] = from_float<T>(factor * Case::grad(v, prm));
  }
  if (partial_out == nullptr) return;  // uniform over the grid
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, offset);
  if ((threadIdx.x & 31) == 0) warp_sum[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x < 32) {
    float s = threadIdx.x < kThreads / 32 ? warp_sum[threadIdx.x] : 0.0f;
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1) s += __shfl_xor_sync(0xffffffffu, s, offset);
    if (threadIdx.x == 0) partial_out[blockIdx.x] = s;
  }
}

template <typename M> struct ElementwiseArgs {
  const void* in[4];
  int64_t period[4];
  void* loss;
  float* partial;
  int64_t blocks;
  void* grad;
  float factor;
  int64_t numel;
  typename M::Params prm;
  cudaStream_t stream;
};

template <typename M, typename T, typename Case>
static void launch_elementwise(const ElementwiseArgs<M>& a) {
  Inputs<T, M::kInputs> in;
  for (int j = 0; j < M::kInputs; ++j) {
    if (a.in[j] == nullptr || a.period[j] <= 0 || a.numel % a.period[j] != 0) {
      throw std::invalid_argument(std::string(M::kName) + ": input " + std::to_string(j) +
                                  " is missing or its period does not divide numel");
    }
    in.p[j] = static_cast<const T*>(a.in[j]);
    in.period[j] = a.period[j];
  }
  if (a.blocks <= 0 || a.blocks > 0x7fffffff) throw std::invalid_argument(std::string(M::kName) + ": bad number of blocks");
  elementwise_kernel<M, T, Case><<<(unsigned)a.blocks, kThreads, 0, a.stream>>>(
      in, static_cast<T*>(a.loss), a.partial, static_cast<T*>(a.grad), a.factor, a.numel, a.prm);
  sx_check(cudaGetLastError(), "launch of the elementwise kernel");
}

template <typename M, typename T, size_t I = 0>
static void launch_case(int64_t which, const ElementwiseArgs<M>& a) {
  using Cases = typename M::Cases;
  if constexpr (I < std::tuple_size<Cases>::value) {
    if (which == (int64_t)I) return launch_elementwise<M, T, std::tuple_element_t<I, Cases>>(a);
    return launch_case<M, T, I + 1>(which, a);
  } else {
    throw std::invalid_argument(std::string(M::kName) + ": no such case");
  }
}

template <typename M> static void run(int64_t case_index, int64_t dtype, const void* in0, int64_t period0,
                                      const void* in1, int64_t period1, const void* in2, int64_t period2,
                                      const void* in3, int64_t period3, void* loss, float* partial,
                                      int64_t num_partial, void* grad, double factor, int64_t numel,
                                      const double* params, int64_t num_params, void* stream) {
  static_assert(M::kInputs >= 1 && M::kInputs <= 4, "an elementwise kernel takes 1 to 4 element inputs");
  if (numel <= 0) return;
  const ElementwiseArgs<M> a{{in0, in1, in2, in3}, {period0, period1, period2, period3}, loss, partial,
                             num_partial, grad, (float)factor, numel, module_params<M>(params, num_params),
                             static_cast<cudaStream_t>(stream)};
  switch (dtype) {
    case 0: return launch_case<M, float>(case_index, a);
    case 1: return launch_case<M, __half>(case_index, a);
    case 2: return launch_case<M, __nv_bfloat16>(case_index, a);
    default: throw std::invalid_argument(std::string(M::kName) + ": dtype must be 0 (float32), 1 (float16) or 2 (bfloat16)");
  }
}

}  // namespace elementwise
}  // namespace symxent_cuda

// the module's host API: declared (api.h), then defined over the skeleton
#define SYMXENT_CUDA_ELEMENTWISE_MODULE(NAME, M)                                                              \
  SYMXENT_CUDA_ELEMENTWISE_API(NAME)                                                                          \
  extern "C" void sx_##NAME##_elementwise(int64_t case_index, int64_t dtype, const void* in0, int64_t period0, \
                                          const void* in1, int64_t period1, const void* in2, int64_t period2, \
                                          const void* in3, int64_t period3, void* loss, float* partial,      \
                                          int64_t num_partial, void* grad, double factor, int64_t numel,     \
                                          const double* params, int64_t num_params, void* stream) {          \
    symxent_cuda::elementwise::run<M>(case_index, dtype, in0, period0, in1, period1, in2, period2, in3, period3, \
                                      loss, partial, num_partial, grad, factor, numel, params, num_params, stream); \
  }
#else
#define SYMXENT_CUDA_ELEMENTWISE_MODULE(NAME, M)
#endif  // SYMXENT_CUDA_EMULATE

#endif  // SYMXENT_CUDA_ELEMENTWISE_CUH
