// case ${when}
//   loss:     ${loss_doc}
//   gradient: ${grad_doc}
struct ${struct_name} {
  __device__ static __forceinline__ float loss(const float (&v)[kInputs], const Params& prm) {
${loss_body}
  }
  __device__ static __forceinline__ float grad(const float (&v)[kInputs], const Params& prm) {
${grad_body}
  }
};
