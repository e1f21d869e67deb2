
/* ${doc} */
void ${symbol}(int64_t rows, int64_t n${params})
{
${prologue}
    for (int64_t r = 0; r < rows; ++r) {
${row}
    }
}
