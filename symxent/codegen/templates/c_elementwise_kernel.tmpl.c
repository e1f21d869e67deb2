
/* ${doc} */
void ${symbol}(int64_t count${params})
{
${prologue}
${loops}
}
