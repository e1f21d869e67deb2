// Host API of the generated module (C linkage: a definition that does not match this
// declaration is a compile error, not a missing symbol at load time).
extern "C" {
// Elementwise loss over `numel` elements. Input j is in_j[i % period_j] (period numel: a full
// array; C: one value per class, broadcast over rows; 1: a scalar); in_0 is differentiated.
// Writes loss[i] (input dtype, if loss != nullptr), partial[b] = the sum of the fp32 losses of
// block b (num_partial blocks, if partial != nullptr), grad[i] = factor * d loss_i / d in_0[i]
// (if grad != nullptr). dtype 0 float32, 1 float16, 2 bfloat16.
void sx_${name}_elementwise(int64_t case_index, int64_t dtype, const void* in0, int64_t period0, const void* in1,
                            int64_t period1, const void* in2, int64_t period2, const void* in3, int64_t period3,
                            void* loss, float* partial, int64_t num_partial, void* grad, double factor,
                            int64_t numel, const double* params, int64_t num_params, void* stream);
}
