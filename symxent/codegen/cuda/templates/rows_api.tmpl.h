// Host API of the generated module (C linkage: a definition that does not match these
// declarations is a compile error, not a missing symbol at load time).
extern "C" {
// One launch over all rows: loss / lse per row (float32), the dense output (gradient or map) in
// the input's dtype. Pointers are device pointers (nullptr: absent); dtype 0 float32, 1 float16,
// 2 bfloat16; `case_index` picks the printed case; the gradient is multiplied by
// factor / *denom (denom nullptr: by factor).
void sx_${name}_rows(int64_t case_index, int64_t dtype, const void* x, const void* y, const void* weight,
                     const int64_t* target, void* out, float* loss, float* lse, const float* denom,
                     double factor, unsigned long long* status, int64_t rows, int64_t cols,
                     int64_t ignore_index, bool lse_of_ignored, const double* params, int64_t num_params,
                     void* stream);
// Before `rows` for class-index targets: *total_weight = sum of weight[target] over the rows whose
// target is not ignore_index; *status = the first row whose target is out of [0, cols) (unchanged if none).
void sx_${name}_prepare(int64_t dtype, const int64_t* target, const void* weight, int64_t rows, int64_t cols,
                        int64_t ignore_index, float* total_weight, unsigned long long* status, void* stream);
// backward: grad[r, :] *= grad_output[r * go_stride] in place (rows whose factor is exactly 1 are skipped).
void sx_${name}_scale_rows(int64_t dtype, void* grad, const float* grad_output, int64_t go_stride,
                           int64_t rows, int64_t cols, void* stream);
}
