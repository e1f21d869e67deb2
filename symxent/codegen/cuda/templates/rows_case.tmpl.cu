// case ${when}
//   row maximum:    ${max_doc}
//   class sums:     ${sums_doc}
//   loss of a row:  ${loss_doc}
//   output element: ${dense_doc}${scatter_doc}
struct ${struct_name} : RowCase<Row, Params> {
${members}
};
