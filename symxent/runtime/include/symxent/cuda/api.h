// symxent CUDA kernels: the C-linkage host API of a generated module NAME, declared once for the
// skeletons (which define it: a definition that does not match is a compile error, not a missing
// symbol at load time) and for the pybind11 binding (binding.h) that calls it. Host-only: no CUDA headers.
#ifndef SYMXENT_CUDA_API_H
#define SYMXENT_CUDA_API_H

#include <cstdint>

// --- row kernels (rows.cuh) ------------------------------------------------------------------------
// One launch over all rows: loss / lse per row (float32), the dense output (gradient or map) in
// the input's dtype. Pointers are device pointers (nullptr: absent); dtype 0 float32, 1 float16,
// 2 bfloat16; `case_index` picks the printed case; the gradient is multiplied by
// factor / *denom (denom nullptr: by factor).
// Before `rows` for class-index targets: *total_weight = sum of weight[target] over the rows whose
// target is not ignore_index; *status = the first row whose target is out of [0, cols) (unchanged if none).
// backward: grad[r, :] *= grad_output[r * go_stride] in place (rows whose factor is exactly 1 are skipped).
#define SYMXENT_CUDA_ROWS_API(NAME) \
extern "C" {                                                                                                   \
void sx_##NAME##_rows(int64_t case_index, int64_t dtype, const void* x, const void* y, const void* weight,     \
                     const int64_t* target, void* out, float* loss, float* lse, const float* denom,            \
                     double factor, unsigned long long* status, int64_t rows, int64_t cols,                    \
                     int64_t ignore_index, bool lse_of_ignored, const double* params, int64_t num_params,      \
                     void* stream);                                                                            \
void sx_##NAME##_prepare(int64_t dtype, const int64_t* target, const void* weight, int64_t rows, int64_t cols, \
                        int64_t ignore_index, float* total_weight, unsigned long long* status, void* stream);  \
void sx_##NAME##_scale_rows(int64_t dtype, void* grad, const float* grad_output, int64_t go_stride,            \
                           int64_t rows, int64_t cols, void* stream);                                          \
}

// --- elementwise kernels (elementwise.cuh) ---------------------------------------------------------
// Elementwise loss over `numel` elements. Input j is in_j[i % period_j] (period numel: a full
// array; C: one value per class, broadcast over rows; 1: a scalar); in_0 is differentiated.
// Writes loss[i] (input dtype, if loss != nullptr), partial[b] = the sum of the fp32 losses of
// block b (num_partial blocks, if partial != nullptr), grad[i] = factor * d loss_i / d in_0[i]
// (if grad != nullptr). dtype 0 float32, 1 float16, 2 bfloat16.
#define SYMXENT_CUDA_ELEMENTWISE_API(NAME) \
extern "C" {                                                                                                       \
void sx_##NAME##_elementwise(int64_t case_index, int64_t dtype, const void* in0, int64_t period0, const void* in1, \
                            int64_t period1, const void* in2, int64_t period2, const void* in3, int64_t period3,   \
                            void* loss, float* partial, int64_t num_partial, void* grad, double factor,            \
                            int64_t numel, const double* params, int64_t num_params, void* stream);                \
}

#endif  // SYMXENT_CUDA_API_H
