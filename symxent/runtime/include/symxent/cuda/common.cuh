// symxent CUDA kernels: what every skeleton shares (dtype conversion, 16-byte packs, error checks).
// Part of the runtime (symxent/runtime/include, package data); the generated .cu files include the
// skeletons (rows.cuh, elementwise.cuh), which include this.
#ifndef SYMXENT_CUDA_COMMON_CUH
#define SYMXENT_CUDA_COMMON_CUH

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#ifndef SYMXENT_CUDA_EMULATE  // on the host, emulate.h gives the types and intrinsics used here
#include <cuda_runtime.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#endif

namespace symxent_cuda {

// --- shared by the generated kernels: dtype conversion, 16-byte packs, error checks ------------
// Loads are bf16 / fp16 / fp32; all arithmetic is fp32; each stored value is rounded once.
// (Explicit conversions only: torch builds with __CUDA_NO_HALF_CONVERSIONS__ and friends.)

template <typename T> __device__ __forceinline__ float to_float(T v);
template <> __device__ __forceinline__ float to_float<float>(float v) { return v; }
#ifndef SYMXENT_CUDA_EMULATE
template <> __device__ __forceinline__ float to_float<__half>(__half v) { return __half2float(v); }
#endif
template <> __device__ __forceinline__ float to_float<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
#ifndef SYMXENT_CUDA_EMULATE
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
#endif
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

__device__ __forceinline__ int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }

// 2^x as one MUFU.EX2: ex2.approx.ftz (about 2 ulp; a result below 2^-126 is 0; 2^-inf = 0, 2^inf = inf, NaN
// stays NaN). The row kernels' element math prints every exp(u) as sx_exp2(u * log2(e)) with log2(e) multiplied
// into u's terms (the proved rewrite exp_as_exp2): exp(z - m) is one FFMA z * log2(e) + h, h = -m * log2(e)
// computed once per row, and one MUFU.EX2.
__device__ __forceinline__ float sx_exp2(float x) {
#ifdef SYMXENT_CUDA_EMULATE
  return std::exp2(x);
#else
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#endif
}

// e^x as one multiply and one MUFU.EX2: sx_exp2(x * log2(e)). The same approximation as __expf, without __expf's
// four instructions of denormal handling. The printed math calls it where an exp is not an element's (the
// loss of a row, the elementwise kernels).
__device__ __forceinline__ float sx_exp(float x) { return sx_exp2(x * 1.4426950408889634f); }

// 16 bytes of a row move as one uint4 (one 128-bit load or store); Vec<T> converts them
// to and from N floats (4 fp32 or 8 fp16 / bf16 values)
template <typename T> struct Vec;

template <> struct Vec<float> {
  static constexpr int N = 4;
  __device__ static __forceinline__ void unpack(const uint4& r, float (&f)[N]) {
    f[0] = __uint_as_float(r.x); f[1] = __uint_as_float(r.y);
    f[2] = __uint_as_float(r.z); f[3] = __uint_as_float(r.w);
  }
  __device__ static __forceinline__ uint4 pack(const float (&f)[N]) {
    return make_uint4(__float_as_uint(f[0]), __float_as_uint(f[1]), __float_as_uint(f[2]), __float_as_uint(f[3]));
  }
};

// fp16 / bf16: two values per 32-bit word, the first in the low half
template <> struct Vec<__nv_bfloat16> {
  static constexpr int N = 8;
  // a bf16 is the upper half of an fp32: widening is a shift (exact)
  __device__ static __forceinline__ float lo(unsigned int u) { return __uint_as_float(u << 16); }
  __device__ static __forceinline__ float hi(unsigned int u) { return __uint_as_float(u & 0xffff0000u); }
  __device__ static __forceinline__ unsigned int two(float a, float b) {
    return (unsigned int)__bfloat16_as_ushort(__float2bfloat16_rn(a)) |
           ((unsigned int)__bfloat16_as_ushort(__float2bfloat16_rn(b)) << 16);
  }
  __device__ static __forceinline__ void unpack(const uint4& r, float (&f)[N]) {
    f[0] = lo(r.x); f[1] = hi(r.x); f[2] = lo(r.y); f[3] = hi(r.y);
    f[4] = lo(r.z); f[5] = hi(r.z); f[6] = lo(r.w); f[7] = hi(r.w);
  }
  __device__ static __forceinline__ uint4 pack(const float (&f)[N]) {
    return make_uint4(two(f[0], f[1]), two(f[2], f[3]), two(f[4], f[5]), two(f[6], f[7]));
  }
};

#ifndef SYMXENT_CUDA_EMULATE
template <> struct Vec<__half> {
  static constexpr int N = 8;
  __device__ static __forceinline__ float lo(unsigned int u) { return __half2float(__ushort_as_half((unsigned short)(u & 0xffffu))); }
  __device__ static __forceinline__ float hi(unsigned int u) { return __half2float(__ushort_as_half((unsigned short)(u >> 16))); }
  __device__ static __forceinline__ unsigned int two(float a, float b) {
    return (unsigned int)__half_as_ushort(__float2half_rn(a)) | ((unsigned int)__half_as_ushort(__float2half_rn(b)) << 16);
  }
  __device__ static __forceinline__ void unpack(const uint4& r, float (&f)[N]) {
    f[0] = lo(r.x); f[1] = hi(r.x); f[2] = lo(r.y); f[3] = hi(r.y);
    f[4] = lo(r.z); f[5] = hi(r.z); f[6] = lo(r.w); f[7] = hi(r.w);
  }
  __device__ static __forceinline__ uint4 pack(const float (&f)[N]) {
    return make_uint4(two(f[0], f[1]), two(f[2], f[3]), two(f[4], f[5]), two(f[6], f[7]));
  }
};
#endif

// 16-byte loads as one instruction each (left to itself the compiler may split a uint4 whose
// words feed separate conversions into four 4-byte loads)
__device__ __forceinline__ uint4 load_pack(const uint4* global) { return __ldcg(global); }
__device__ __forceinline__ uint4 load_shared_pack(const uint4* shared) {
#ifdef SYMXENT_CUDA_EMULATE
  return *shared;
#else
  uint4 r;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(r.x), "=r"(r.y), "=r"(r.z), "=r"(r.w)
               : "r"((unsigned int)__cvta_generic_to_shared(shared))
               : "memory");
  return r;
#endif
}

// the i-th 16-byte pack starting at an aligned element pointer
template <typename T> __device__ __forceinline__ const uint4* packs(const T* aligned) {
  return reinterpret_cast<const uint4*>(aligned);
}
template <typename T> __device__ __forceinline__ uint4* packs(T* aligned) { return reinterpret_cast<uint4*>(aligned); }

// values [col, col + N) of a per-class vector that may be absent (then all 1); `aligned`: one vector load
template <typename T, int N>
__device__ __forceinline__ void load_classes(const T* v, int64_t col, bool aligned, float (&f)[N]) {
  if (v == nullptr) {
#pragma unroll
    for (int i = 0; i < N; ++i) f[i] = 1.0f;
  } else if (aligned) {
    Vec<T>::unpack(__ldg(packs(v + col)), f);  // read-only, shared by all rows: through L1
  } else {
#pragma unroll
    for (int i = 0; i < N; ++i) f[i] = to_float<T>(v[col + i]);
  }
}

#ifndef SYMXENT_CUDA_EMULATE
static inline void sx_check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    throw std::runtime_error(std::string("symxent CUDA kernel: ") + what + ": " + cudaGetErrorString(err));
  }
}

[[maybe_unused]] static inline int sx_device_attribute(cudaDeviceAttr attribute) {
  int device = 0, value = 0;
  sx_check(cudaGetDevice(&device), "cudaGetDevice");
  sx_check(cudaDeviceGetAttribute(&value, attribute, device), "cudaDeviceGetAttribute");
  return value;
}

// the loss's parameters from the host's values: M::Params from M::kParams doubles
template <typename M> static typename M::Params module_params(const double* values, int64_t count) {
  if (count != M::kParams) {
    throw std::invalid_argument(std::string(M::kName) + ": expected " + std::to_string(M::kParams) + " parameter(s)");
  }
  return M::params(values);
}

#endif  // SYMXENT_CUDA_EMULATE

}  // namespace symxent_cuda

#endif  // SYMXENT_CUDA_COMMON_CUH
