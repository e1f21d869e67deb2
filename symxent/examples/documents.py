"""The worked examples of the four source documents (``shared/seeds/*.txt``), as data.

One :class:`WorkedExample` per value or claim a document states: where it is, the inputs exactly as
the document prints them (decimal strings, converted with ``sympy.Rational``; never floats), the
stated value exactly as printed (its printed precision is its number of decimals), the name of the
recomputation in :mod:`symxent.examples.check`, and the verdict we determined by hand
(``expected_verdict``), which ``symxent verify`` compares with the recomputed one.

``method`` names one of three kinds of recomputation (see :mod:`symxent.examples.check`):

- a *numeric* method: the stated value is a printed decimal;
- a *symbolic* method (``*_exact``): the stated value is a closed form such as ``−log(0.6)``;
  its exact value is given by ``inputs["stated_neg_logs"]`` and compared exactly;
- a *claim* method (``claim_*``): the stated value is the document's sentence, checked on the
  document's own numbers or, where it gives none, on small concrete data kept in ``inputs``.

Inputs are never adjusted to make a stated value pass: a wrong document is reported as wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

DOC_000 = "000_097d806fe62eab93.txt"  # Pytorch常用的交叉熵损失函数CrossEntropyLoss()详解
DOC_001 = "001_354c26b8e3d13452.txt"  # PyTorch: CrossEntropyLoss vs. NLLLoss vs. BCELoss
DOC_002 = "002_c432bc89376246f4.txt"  # CrossEntropyLoss()损失函数
DOC_003 = "003_8b953191ebbf0183.txt"  # 关于交叉熵在 loss 函数中使用的理解
DOCUMENTS = (DOC_000, DOC_001, DOC_002, DOC_003)

VERDICTS = ("agrees", "rounding", "disagrees")


@dataclass(frozen=True)
class WorkedExample:
    """A value (or claim) one document states, with the inputs it states it for."""

    document: str           #: the seed's file name
    lines: str              #: where in it: "122" or "115-136"
    example: str            #: which worked example
    quantity: str           #: which of its values
    method: str             #: the recomputation, a name in check.py's tables
    inputs: Mapping = field(hash=False)  #: exact strings / ints as printed (or the claim's test data)
    stated: str             #: exactly as printed
    expected_verdict: str   #: agrees | rounding | disagrees, determined by hand
    context: str = ""       #: what the reader needs to know (missing images, the log base, ...)

    @property
    def title(self) -> str:
        """``example, l.lines``: the example and where it is."""
        return f"{self.example}, l.{self.lines}"


# --- 000: information, entropy, cross-entropy, and a 3x3 PyTorch run -------------------------

_SHOOTING = {"p_hit_xiaoming": "10%", "p_hit_xiaowang": "99.9%"}
_SHOOTING_IMAGES = ("the two entropies were images (image-20200331200316913.png, image-20200331200350912.png) "
                    "that are missing from the text; only the text's comparison is checked")

#: the printed run (lines 115-136): inputs and outputs to 4 decimals, exactly as printed
X_INPUT = (("2.8883", "0.1760", "1.0774"),
           ("1.1216", "-0.0562", "0.0660"),
           ("-1.3939", "-0.0967", "0.5853"))
Y_TARGET = (1, 2, 0)
PRINTED_TENSORS = {
    # name: (first line, method, rows as printed)
    "soft_output": (122, "softmax", (("0.8131", "0.0540", "0.1329"),
                                     ("0.6039", "0.1860", "0.2102"),
                                     ("0.0841", "0.3076", "0.6083"))),
    "log_output": (126, "log_of_softmax", (("-0.2069", "-2.9192", "-2.0178"),
                                           ("-0.5044", "-1.6822", "-1.5599"),
                                           ("-2.4762", "-1.1790", "-0.4970"))),
    "logsoftmax_output": (130, "log_softmax", (("-0.2069", "-2.9192", "-2.0178"),
                                               ("-0.5044", "-1.6822", "-1.5599"),
                                               ("-2.4762", "-1.1790", "-0.4970"))),
}
#: the printed elements that the printed inputs do not reproduce, but their rounding does (checked)
_OFF_BY_INPUT_ROUNDING = {("soft_output", 1, 2), ("soft_output", 2, 2),
                          ("log_output", 1, 2), ("logsoftmax_output", 1, 2)}
_RUN = "3x3 PyTorch run"
_RUN_CONTEXT = "x_input is printed to 4 decimals: the true inputs lie within ±0.00005 of it"


def _row_printed(r: int) -> dict:
    """All printed outputs of row ``r`` by method: the joint check of a row uses them."""
    return {method: rows[r] for _, method, rows in PRINTED_TENSORS.values()}


def _printed_tensor_examples() -> list:
    out = []
    for name, (first_line, method, rows) in PRINTED_TENSORS.items():
        for r, row in enumerate(rows):
            for k, printed in enumerate(row):
                out.append(WorkedExample(
                    DOC_000, str(first_line + r), _RUN, f"{name}[{r}][{k}]", method,
                    {"x": X_INPUT[r], "k": k, "row_printed": _row_printed(r)}, printed,
                    "rounding" if (name, r, k) in _OFF_BY_INPUT_ROUNDING else "agrees"))
    return out


_DOC_000 = [
    WorkedExample(DOC_000, "23-24", "information", "I(x0) when p(x0) = 1", "claim_information_zero_at_certainty",
                  {"p": "1"}, "熵将等于0，也就是说该事件的发生不会导致任何信息量的增加", "agrees",
                  "the text says 熵 (entropy) where it means the information I(x0) = -log p(x0)"),
    WorkedExample(DOC_000, "27-34", "shooting", "Xiaoming's entropy is low", "claim_binary_entropy_below_maximum",
                  {"p": _SHOOTING["p_hit_xiaoming"]}, "小明打靶结果的不确定度较低，毕竟十次有9次都脱靶", "agrees",
                  _SHOOTING_IMAGES + "; 'low' read as: below the maximum log 2 of a 0-1 distribution"),
    WorkedExample(DOC_000, "27-34", "shooting", "Xiaowang's entropy is lower", "claim_binary_entropy_order",
                  {"p_higher": _SHOOTING["p_hit_xiaoming"], "p_lower": _SHOOTING["p_hit_xiaowang"]},
                  "但是小王打靶结果的不确定度更低，1000次射击只有1次脱靶", "agrees", _SHOOTING_IMAGES),
    WorkedExample(DOC_000, "40-56", "q1/q2 cross-entropy", "H(p,q2) < H(p,q1)", "claim_cross_entropy_order",
                  {"p": ("1", "0", "0"), "q_farther": ("0.5", "0.2", "0.3"), "q_closer": ("0.8", "0.1", "0.1")},
                  "q2与p更为接近，它的交叉熵也更小", "agrees",
                  "the two cross-entropies were an image (image-20200331200558370.png) missing from the text; "
                  "only the text's ordering is checked"),
    WorkedExample(DOC_000, "72", _RUN, "softmax in (0,1), log < 0", "claim_softmax_in_unit_interval",
                  {"x": X_INPUT}, "Softmax后的数值都在0~1之间，所以ln之后值域是负无穷到0", "agrees"),
    WorkedExample(DOC_000, "74", _RUN, "NLLLoss = mean of -L[r][y_r]", "claim_nll_loss_is_mean_of_picked",
                  {"x": X_INPUT, "target": Y_TARGET},
                  "NLLLoss的结果就是把上面的输出与Label对应的那个值拿出来", "agrees"),
    *_printed_tensor_examples(),
    WorkedExample(DOC_000, "85", _RUN, "softmax rows sum to 1", "claim_softmax_rows_sum_to_one",
                  {"x": X_INPUT, "printed": PRINTED_TENSORS["soft_output"][2]},
                  "此时可以看到每一行加到一起结果都是1", "agrees"),
    WorkedExample(DOC_000, "94", _RUN, "log(softmax) == LogSoftmax", "claim_log_of_softmax_is_log_softmax",
                  {"x": X_INPUT}, "对比softmax与log的结合与nn.LogSoftmaxloss(负对数似然损失)的输出结果，发现两者是一致的",
                  "agrees", "the comment calls LogSoftmax a 负对数似然损失 (negative log-likelihood loss): "
                            "it is the log-softmax; the loss is NLLLoss"),
    WorkedExample(DOC_000, "134", _RUN, "nlloss_output", "nll_loss_of_log_softmax",
                  {"x": X_INPUT, "target": Y_TARGET}, "2.3185", "agrees", _RUN_CONTEXT),
    WorkedExample(DOC_000, "136", _RUN, "crossentropyloss_output", "cross_entropy_loss",
                  {"x": X_INPUT, "target": Y_TARGET}, "2.3185", "agrees", _RUN_CONTEXT),
    WorkedExample(DOC_000, "139", _RUN, "CrossEntropyLoss == softmax-log-NLLLoss", "claim_ce_is_log_softmax_nll",
                  {"x": X_INPUT, "target": Y_TARGET},
                  "直接使用pytorch中的loss_func=nn.CrossEntropyLoss()计算得到的结果与softmax-log-NLLLoss计算得到的结果是一致的",
                  "agrees"),
]

# --- 001: claims without numbers, checked on small concrete data ------------------------------

#: a small batch with class weights and an ignored target, for 001's claims (not from the document)
_BATCH = {"x": (("1", "2", "0"), ("0", "0", "3"), ("2", "-1", "1"), ("0", "1", "1"), ("1", "1", "-2")),
          "target": (0, 2, 1, 2, 1), "weight": ("0.5", "2", "1.5"), "ignore_index": 1}
_CONSTRUCTED = "the document gives no numbers: checked on the concrete data in the inputs"

_DOC_001 = [
    WorkedExample(DOC_001, "22", "cross-entropy", "H(p,q) != H(q,p)", "claim_cross_entropy_not_symmetric",
                  {"p": ("0.5", "0.5"), "q": ("0.9", "0.1")}, "注意交叉熵不满足对称性", "agrees", _CONSTRUCTED),
    WorkedExample(DOC_001, "35", "loss formula (1)", "loss(x,class) = catalogue", "claim_formula_is_softmax_cross_entropy",
                  {"weighted": False},
                  r"loss(x,class) = -\log\left(\frac{\exp(x[class])}{\sum_j \exp(x[j])} \right)", "agrees",
                  "checked for a symbolic number of classes n"),
    WorkedExample(DOC_001, "41", "weighted loss formula", "weighted loss = catalogue",
                  "claim_formula_is_softmax_cross_entropy", {"weighted": True},
                  r"loss(x,class) = -weight[class]\log\left(\frac{\exp(x[class])}{\sum_j \exp(x[j])} \right)",
                  "agrees", "checked for a symbolic number of classes n"),
    WorkedExample(DOC_001, "49", "weighted mean", "mean = sum loss / sum weight", "claim_weighted_mean",
                  {k: _BATCH[k] for k in ("x", "target", "weight")},
                  r"\mathcal{L}(X,class) = \frac{\sum_{x\in X}loss(x,class[x])}{\sum_{x\in X}weight[class[x]]}",
                  "agrees", _CONSTRUCTED),
    WorkedExample(DOC_001, "67-70", "LogSoftmax+NLLLoss", "row loss, symbolic n", "claim_ce_row_is_log_softmax_nll",
                  {}, "`CrossEntropyLoss`是`NLLLoss`和`LogSoftmax`的结合体", "agrees",
                  "checked for a symbolic number of classes n, with class weights"),
    WorkedExample(DOC_001, "72", "LogSoftmax+NLLLoss", "batch, weights, ignore_index", "claim_ce_batch_is_log_softmax_nll",
                  dict(_BATCH), "`NLLLoss` 在其他部分的计算过程与 `CrossEntropyLoss` 完全一致", "agrees",
                  _CONSTRUCTED + "; all three reductions"),
]

# --- 002: five samples; the printed arithmetic pairs the one-hot with the wrong probability ------

_Q = {0: ("0.2", "0.6", "0.2"), 1: ("0.7", "0.2", "0.1"), 2: ("0.1", "0.1", "0.8")}  # "类别 k 的预测概率分布"
#: (sample, lines, label, the weights the printed expression puts on log q, stated)
_SAMPLES = ((1, "24-28", 1, ("1", "0", "0"), "0.36"),
            (2, "30-34", 0, ("0", "1", "0"), "0.51"),
            (3, "36-40", 2, ("0", "0", "1"), "0.22"),
            (4, "42-46", 1, ("1", "0", "0"), "0.36"),
            (5, "48-52", 2, ("0", "0", "1"), "0.22"),
            ("1 (repeated)", "54-56", 1, ("1", "0", "0"), "0.36"))  # a stray copy of sample 1 after the list
_LN = "the stated losses use the natural log"


def _sample_examples() -> list:
    out = []
    for sample, lines, label, weights, stated in _SAMPLES:
        name = f"sample {sample}"
        right = weights == tuple("1" if m == label else "0" for m in range(3))
        out.append(WorkedExample(DOC_002, lines, name, "printed expression", "cross_entropy",
                                 {"p": weights, "q": _Q[label]}, stated, "agrees",
                                 _LN + "; p = the weights the printed expression puts on log q"))
        out.append(WorkedExample(DOC_002, lines, name, f"loss of label {label}", "one_hot_cross_entropy",
                                 {"label": label, "q": _Q[label], "printed_expression_weights": weights}, stated,
                                 "agrees" if right else "disagrees", _LN))
    return out


_DOC_002 = _sample_examples()

# --- 003: information table, entropy, single- and multi-label losses ---------------------------

_NATURAL = "the document's note: 文中的对数均为自然对数 (natural logs)"

_DOC_003 = [
    WorkedExample(DOC_003, "43", "computer table", "I(A), p(A) = 0.7", "self_information", {"p": "0.7"},
                  "0.36", "agrees", _NATURAL),
    WorkedExample(DOC_003, "43", "computer table", "I(B), p(B) = 0.2", "self_information", {"p": "0.2"},
                  "1.61", "agrees", _NATURAL),
    WorkedExample(DOC_003, "43", "computer table", "I(C), p(C) = 0.1", "self_information", {"p": "0.1"},
                  "2.30", "agrees", _NATURAL),
    WorkedExample(DOC_003, "55", "computer table", "H(X)", "entropy",
                  {"p": ("0.7", "0.2", "0.1"), "rounded_information_decimals": 2}, "0.804", "rounding",
                  _NATURAL),
    WorkedExample(DOC_003, "61", "0-1 distribution", "H(p, 1-p) = binary entropy", "claim_entropy_of_two_is_binary",
                  {}, "H(X)=−∑i=1np(xi)log(p(xi))=−p(x)log(p(x))−(1−p(x))log(1−p(x))", "agrees",
                  "checked for a symbolic p"),
    WorkedExample(DOC_003, "94", "KL decomposition", "D(p||q) = -H(p) + H(p,q)", "claim_kl_is_cross_entropy_minus_entropy",
                  {}, "DKL(p||q)=∑i=1np(xi)log(p(xi))−∑i=1np(xi)log(q(xi))=−H(p(x))+[−∑i=1np(xi)log(q(xi))]",
                  "agrees", "checked for a symbolic number of classes n"),
    WorkedExample(DOC_003, "133-137", "single-label", "cat/frog/mouse loss", "cross_entropy_exact",
                  {"p": ("0", "1", "0"), "q": ("0.3", "0.6", "0.1"), "stated_neg_logs": ("0.6",)},
                  "−log(0.6)", "agrees"),
    WorkedExample(DOC_003, "158-171", "multi-label", "loss 猫 (cat)", "bce_exact",
                  {"p": "0.1", "t": "0", "stated_neg_logs": ("0.9",)}, "−log(0.9)", "agrees"),
    WorkedExample(DOC_003, "158-171", "multi-label", "loss 蛙 (frog)", "bce_exact",
                  {"p": "0.7", "t": "1", "stated_neg_logs": ("0.7",)}, "−log(0.7)", "agrees"),
    WorkedExample(DOC_003, "158-171", "multi-label", "loss 鼠 (mouse)", "bce_exact",
                  {"p": "0.8", "t": "1", "stated_neg_logs": ("0.8",)}, "−log(0.8)", "agrees"),
    WorkedExample(DOC_003, "175", "multi-label", "cat+frog+mouse loss", "multilabel_bce_exact",
                  {"p": ("0.1", "0.7", "0.8"), "t": ("0", "1", "1"), "stated_neg_logs": ("0.9", "0.7", "0.8")},
                  "loss=loss 猫 +loss 蛙 +loss 鼠", "agrees",
                  "stated as the sum of the three stated parts −log(0.9) − log(0.7) − log(0.8)"),
]

#: every worked example of the four documents, in document order
WORKED_EXAMPLES: tuple = tuple(_DOC_000 + _DOC_001 + _DOC_002 + _DOC_003)
