// Python binding of the generated CUDA module ${name}.cu (symxent; do not edit).
// Addresses arrive as Python ints (tensor.data_ptr(), stream.cuda_stream; 0 for absent). C++
// exceptions become Python exceptions (std::invalid_argument: ValueError, others: RuntimeError).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <cstdint>
#include <vector>

${api}

template <typename P> static P* sx_ptr(int64_t address) { return reinterpret_cast<P*>(address); }

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "symxent generated CUDA kernels: ${name}";
  m.def("rows", [](int64_t case_index, int64_t dtype, int64_t x, int64_t y, int64_t weight, int64_t target,
                   int64_t out, int64_t loss, int64_t lse, int64_t denom, double factor, int64_t status,
                   int64_t rows, int64_t cols, int64_t ignore_index, bool lse_of_ignored,
                   const std::vector<double>& params, int64_t stream) {
    sx_${name}_rows(case_index, dtype, sx_ptr<const void>(x), sx_ptr<const void>(y), sx_ptr<const void>(weight),
                    sx_ptr<const int64_t>(target), sx_ptr<void>(out), sx_ptr<float>(loss), sx_ptr<float>(lse), sx_ptr<const float>(denom),
                    factor, sx_ptr<unsigned long long>(status), rows, cols, ignore_index, lse_of_ignored,
                    params.data(), (int64_t)params.size(), sx_ptr<void>(stream));
  });
  m.def("prepare", [](int64_t dtype, int64_t target, int64_t weight, int64_t rows, int64_t cols,
                      int64_t ignore_index, int64_t total_weight, int64_t status, int64_t stream) {
    sx_${name}_prepare(dtype, sx_ptr<const int64_t>(target), sx_ptr<const void>(weight), rows, cols, ignore_index,
                       sx_ptr<float>(total_weight), sx_ptr<unsigned long long>(status), sx_ptr<void>(stream));
  });
  m.def("scale_rows", [](int64_t dtype, int64_t grad, int64_t grad_output, int64_t go_stride, int64_t rows,
                         int64_t cols, int64_t stream) {
    sx_${name}_scale_rows(dtype, sx_ptr<void>(grad), sx_ptr<const float>(grad_output), go_stride, rows, cols,
                          sx_ptr<void>(stream));
  });
}
