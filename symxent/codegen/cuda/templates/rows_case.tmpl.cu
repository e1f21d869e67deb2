// case ${when}
//   row maximum:    ${max_doc}
//   class sums:     ${sums_doc}
//   loss of a row:  ${loss_doc}
//   output element: ${dense_doc}${scatter_doc}
struct ${struct_name} {
  static constexpr bool kIndexTarget = ${index_target};  // each row has a target class c
  static constexpr bool kSecondRow = ${second_row};      // a second (R, C) input y
  static constexpr bool kHasMax = ${has_max};            // a row maximum m (the shift of the exponentials)
  static constexpr int kSums = ${num_sums};
  static constexpr int kLseSum = ${lse_sum};             // the sum of exp(score - m): lse = m + log(s) (-1: none)
  static constexpr bool kScatter = ${has_scatter};       // a value added at the target class
  // how each sum follows the running maximum m: 0 not at all, 1 as exp(-m) (rescaled by
  // exp(m_old - m_new)), 2 linearly (shifted by (m_old - m_new) * u, u the sum of -d term / dm)
  __device__ static constexpr int sum_kind(int j) { return ${sum_kinds}; }
  // the values at the target class c (gathers)
  template <typename T>
  __device__ static __forceinline__ void gather(const T* x_row, const T* y_row, const T* classes, int64_t c,
                                                float* g) {
${gather_body}
  }
  // pass 1's loop-invariant values (computed once per row, before the loop)
  static constexpr int kHoisted1 = ${num_hoisted1};
  __device__ static __forceinline__ void pass1_terms(const Row& row, const Params& prm, float* h) {
${pass1_body}
  }
  // the element whose maximum over the row is m
  __device__ static __forceinline__ float score(float ${xa}, float ${ya}, float ${wa}, const Row& row,
                                               const float* h, const Params& prm) {
${score_body}
  }
  // one element's term of each class-axis sum at the shift m (s), and -d term / dm of the linear ones (u)
  __device__ static __forceinline__ void sums(float ${xa}, float ${ya}, float ${wa}, float ${m}, const Row& row,
                                              const float* h, const Params& prm, float* s, float* u) {
${sums_body}
  }
  __device__ static __forceinline__ float loss(const Row& row, const Params& prm) {
${loss_body}
  }
  // pass 2's loop-invariant values (from the row's statistics, once per row)
  static constexpr int kHoisted2 = ${num_hoisted2};
  __device__ static __forceinline__ void pass2_terms(const Row& row, const Params& prm, float* h) {
${pass2_body}
  }
  __device__ static __forceinline__ float dense(float ${xa}, float ${ya}, float ${wa}, const Row& row,
                                                const float* h, const Params& prm) {
${dense_body}
  }
  // added to the output element at the target class
  __device__ static __forceinline__ float scatter(const Row& row, const Params& prm) {
${scatter_body}
  }
};
