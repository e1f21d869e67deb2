#pragma omp simd${clauses}
for (int64_t ${index} = 0; ${index} < ${size}; ++${index}) {
${body}
}
