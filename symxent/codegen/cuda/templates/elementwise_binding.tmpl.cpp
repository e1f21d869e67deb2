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
  m.def("elementwise", [](int64_t case_index, int64_t dtype, int64_t in0, int64_t period0, int64_t in1,
                          int64_t period1, int64_t in2, int64_t period2, int64_t in3, int64_t period3,
                          int64_t loss, int64_t partial, int64_t num_partial, int64_t grad, double factor,
                          int64_t numel, const std::vector<double>& params, int64_t stream) {
    sx_${name}_elementwise(case_index, dtype, sx_ptr<const void>(in0), period0, sx_ptr<const void>(in1), period1,
                           sx_ptr<const void>(in2), period2, sx_ptr<const void>(in3), period3, sx_ptr<void>(loss),
                           sx_ptr<float>(partial), num_partial, sx_ptr<void>(grad), factor, numel, params.data(),
                           (int64_t)params.size(), sx_ptr<void>(stream));
  });
}
