// symxent CUDA kernels: the pybind11 module of a generated module NAME, for the runtime's build
// (torch.utils.cpp_extension.load_inline compiles it next to NAME.cu). Addresses arrive as Python ints
// (tensor.data_ptr(), stream.cuda_stream; 0 for absent). C++ exceptions become Python exceptions
// (std::invalid_argument: ValueError, others: RuntimeError). A generated contract's binding is
//   #include "symxent/cuda/binding.h"
//   SYMXENT_CUDA_ROWS_BINDING(NAME)      (or SYMXENT_CUDA_ELEMENTWISE_BINDING(NAME))
#ifndef SYMXENT_CUDA_BINDING_H
#define SYMXENT_CUDA_BINDING_H

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <cstdint>
#include <vector>

#include "symxent/cuda/api.h"

namespace symxent_cuda {
template <typename P> static P* sx_ptr(int64_t address) { return reinterpret_cast<P*>(address); }
}  // namespace symxent_cuda

#define SYMXENT_CUDA_ROWS_BINDING(NAME) \
SYMXENT_CUDA_ROWS_API(NAME)                                                                                                                \
using symxent_cuda::sx_ptr;                                                                                                                \
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {                                                                                                 \
  m.doc() = "symxent generated CUDA kernels: " #NAME;                                                                                      \
  m.def("rows", [](int64_t case_index, int64_t dtype, int64_t x, int64_t y, int64_t weight, int64_t target,                                \
                   int64_t out, int64_t loss, int64_t lse, int64_t denom, double factor, int64_t status,                                   \
                   int64_t rows, int64_t cols, int64_t ignore_index, bool lse_of_ignored,                                                  \
                   const std::vector<double>& params, int64_t stream) {                                                                    \
    sx_##NAME##_rows(case_index, dtype, sx_ptr<const void>(x), sx_ptr<const void>(y), sx_ptr<const void>(weight),                          \
                    sx_ptr<const int64_t>(target), sx_ptr<void>(out), sx_ptr<float>(loss), sx_ptr<float>(lse), sx_ptr<const float>(denom), \
                    factor, sx_ptr<unsigned long long>(status), rows, cols, ignore_index, lse_of_ignored,                                  \
                    params.data(), (int64_t)params.size(), sx_ptr<void>(stream));                                                          \
  });                                                                                                                                      \
  m.def("prepare", [](int64_t dtype, int64_t target, int64_t weight, int64_t rows, int64_t cols,                                           \
                      int64_t ignore_index, int64_t total_weight, int64_t status, int64_t stream) {                                        \
    sx_##NAME##_prepare(dtype, sx_ptr<const int64_t>(target), sx_ptr<const void>(weight), rows, cols, ignore_index,                        \
                       sx_ptr<float>(total_weight), sx_ptr<unsigned long long>(status), sx_ptr<void>(stream));                             \
  });                                                                                                                                      \
  m.def("scale_rows", [](int64_t dtype, int64_t grad, int64_t grad_output, int64_t go_stride, int64_t rows,                                \
                         int64_t cols, int64_t stream) {                                                                                   \
    sx_##NAME##_scale_rows(dtype, sx_ptr<void>(grad), sx_ptr<const float>(grad_output), go_stride, rows, cols,                             \
                          sx_ptr<void>(stream));                                                                                           \
  });                                                                                                                                      \
}

#define SYMXENT_CUDA_ELEMENTWISE_BINDING(NAME) \
SYMXENT_CUDA_ELEMENTWISE_API(NAME)                                                                                 \
using symxent_cuda::sx_ptr;                                                                                        \
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {                                                                         \
  m.doc() = "symxent generated CUDA kernels: " #NAME;                                                              \
  m.def("elementwise", [](int64_t case_index, int64_t dtype, int64_t in0, int64_t period0, int64_t in1,            \
                          int64_t period1, int64_t in2, int64_t period2, int64_t in3, int64_t period3,             \
                          int64_t loss, int64_t partial, int64_t num_partial, int64_t grad, double factor,         \
                          int64_t numel, const std::vector<double>& params, int64_t stream) {                      \
    sx_##NAME##_elementwise(case_index, dtype, sx_ptr<const void>(in0), period0, sx_ptr<const void>(in1), period1, \
                           sx_ptr<const void>(in2), period2, sx_ptr<const void>(in3), period3, sx_ptr<void>(loss), \
                           sx_ptr<float>(partial), num_partial, sx_ptr<void>(grad), factor, numel, params.data(),  \
                           (int64_t)params.size(), sx_ptr<void>(stream));                                          \
  });                                                                                                              \
}

#endif  // SYMXENT_CUDA_BINDING_H
