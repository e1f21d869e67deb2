"""The worked examples of the four source articles, as data: what each states, in its words, for what inputs.

The sources are four Chinese articles on cross-entropy in PyTorch, cited by key (:data:`SOURCES`,
``"S1"`` .. ``"S4"``) with the title, author, date and URL each article states (``"not stated"`` where it
states none).

One :class:`WorkedExample` per value or claim an article states: its source, the short passage that
states it (verbatim, in the original language, with an English translation, so that no copy of the
article is needed to read it; a passage's lines are the article's lines, stripped of their indentation and
list bullets, and ``" … "`` marks text left out), the inputs exactly as the article prints them (decimal strings,
converted with ``sympy.Rational``; never floats), the stated value exactly as printed (its printed
precision is its number of decimals), the name of the recomputation in :mod:`symxent.examples.check`,
and the verdict we determined by hand (``expected_verdict``), which ``symxent verify`` compares with the
recomputed one.

``method`` names one of three kinds of recomputation (see :mod:`symxent.examples.check`):

- a *numeric* method: the stated value is a printed decimal;
- a *symbolic* method (``*_exact``): the stated value is a closed form such as ``−log(0.6)``;
  its exact value is given by ``inputs["stated_neg_logs"]`` and compared exactly;
- a *claim* method (``claim_*``): the stated value is the article's sentence, checked on the
  article's own numbers or, where it gives none, on small concrete data kept in ``inputs``.

Inputs are never adjusted to make a stated value pass: a wrong article is reported as wrong.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

#: the value of a citation field that the article itself does not state
NOT_STATED = "not stated"

#: marks text left out of a passage (between two verbatim excerpts of the same article)
OMISSION = " … "

VERDICTS = ("agrees", "rounding", "disagrees")


@dataclass(frozen=True)
class Source:
    """One source article, with the citation fields it states itself (:data:`NOT_STATED` otherwise)."""

    key: str                #: "S1" .. "S4"
    title: str              #: as the article gives it
    author: str             #: the author (or publishing account) it names, or "not stated"
    date: str               #: ISO date it states, or "not stated"
    url: str                #: the original's address it states, or "not stated"
    account: str = ""       #: the blog account the URL names, where the article names no author
    note: str = ""          #: what else the article's own text says about where it comes from

    def citation(self) -> str:
        """``[S2] "title", author, date, URL``, each missing field written as "<field> not stated"."""
        def stated(name: str, value: str) -> str:
            return f"{name} {NOT_STATED}" if value == NOT_STATED else value
        author = stated("author", self.author) + (f" (blog account {self.account})" if self.account else "")
        return (f'[{self.key}] "{self.title}", {author}, {stated("date", self.date)}, '
                f'{stated("URL", self.url)}')


S1 = Source(
    "S1", "Pytorch常用的交叉熵损失函数CrossEntropyLoss()详解",
    "AINLPer (WeChat official account; editor ShuYini)", "2019-12-22",
    "https://mp.weixin.qq.com/s?__biz=MzUzOTgwNDMzOQ==&mid=2247484340&idx=2&sn=d504eb63dcb0ea2961b7a96e497c8aa1",
    note="its header: 来源 (source) AINLPer 微信公众号 (WeChat official account), 编辑 (editor) ShuYini, "
         "校稿 (proofreading) ShuYini, 时间 (date) 2019-12-22; the text as archived is a repost whose links go "
         "through links.jianshu.com; the URL is the target of its AINLPer link, without that link's "
         "chksm, token and lang parameters")
S2 = Source(
    "S2", "PyTorch: CrossEntropyLoss vs. NLLLoss vs. BCELoss", "LiJT", NOT_STATED, NOT_STATED,
    note="a blog post's front matter (title, author, tags, key: pytorch20211007); it states no date and no "
         "address (the key's digits are not stated as a date)")
S3 = Source(
    "S3", "CrossEntropyLoss()损失函数", NOT_STATED, NOT_STATED, NOT_STATED,
    note="a note with no author, date or address in its text")
S4 = Source(
    "S4", "关于交叉熵在 loss 函数中使用的理解", NOT_STATED, NOT_STATED,
    "https://blog.csdn.net/tsyccnh/article/details/79163834", account="tsyccnh",
    note="converted by SimpRead (简悦) from the CSDN post at the URL (原文地址, the original's address); "
         "no author or date in its text")

#: the four source articles by key
SOURCES: Mapping[str, Source] = {s.key: s for s in (S1, S2, S3, S4)}


@dataclass(frozen=True)
class WorkedExample:
    """A value (or claim) one source article states, with the passage that states it and its inputs."""

    source: Source          #: the article (one of :data:`SOURCES`)
    example: str            #: which worked example
    quantity: str           #: which of its values
    method: str             #: the recomputation, a name in check.py's tables
    inputs: Mapping = field(hash=False)  #: exact strings / ints as printed (or the claim's test data)
    stated: str             #: exactly as printed
    expected_verdict: str   #: agrees | rounding | disagrees, determined by hand
    passage: str            #: the article's text that states it, verbatim (original language; " … " = omitted)
    translation: str        #: the passage in English
    context: str = ""       #: what the reader needs to know (missing images, the log base, ...)


# --- S1: information, entropy, cross-entropy, and a 3x3 PyTorch run ---------------------------

_SHOOTING = {"p_hit_xiaoming": "10%", "p_hit_xiaowang": "99.9%"}
_SHOOTING_IMAGES = ("the two entropies were images (image-20200331200316913.png, image-20200331200350912.png) "
                    "that are missing from the text; only the text's comparison is checked")
_SHOOTING_PASSAGE = ("在打靶之前我们知道小明和小王打中的先验概率为10%，99.9%。" + OMISSION +
                     "虽然小明打靶结果的不确定度较低，毕竟十次有9次都脱靶；但是小王打靶结果的不确定度更低，"
                     "1000次射击只有1次脱靶，结果相当的确定。")
_SHOOTING_TRANSLATION = ("Before the shooting we know that the prior probabilities of Xiaoming and Xiaowang "
                         "hitting are 10% and 99.9%." + OMISSION + "Although the uncertainty of Xiaoming's "
                         "shooting result is low, since he misses 9 times out of ten, the uncertainty of "
                         "Xiaowang's result is even lower: only 1 miss in 1000 shots, a quite certain result.")

#: the article's printed run, verbatim: inputs and outputs printed to 4 decimals
RUN_PRINTOUT = """\
x_input:
 tensor([[ 2.8883,  0.1760,  1.0774],
        [ 1.1216, -0.0562,  0.0660],
        [-1.3939, -0.0967,  0.5853]])
y_target
 tensor([1, 2, 0])
soft_output:
 tensor([[0.8131, 0.0540, 0.1329],
        [0.6039, 0.1860, 0.2102],
        [0.0841, 0.3076, 0.6083]])
log_output:
 tensor([[-0.2069, -2.9192, -2.0178],
        [-0.5044, -1.6822, -1.5599],
        [-2.4762, -1.1790, -0.4970]])
logsoftmax_output:
 tensor([[-0.2069, -2.9192, -2.0178],
        [-0.5044, -1.6822, -1.5599],
        [-2.4762, -1.1790, -0.4970]])
nlloss_output:
 tensor(2.3185)
crossentropyloss_output:
 tensor(2.3185)
"""
#: the printed run's inputs, as printed (transcribed from :data:`RUN_PRINTOUT`; the tests compare them)
X_INPUT = (("2.8883", "0.1760", "1.0774"),
           ("1.1216", "-0.0562", "0.0660"),
           ("-1.3939", "-0.0967", "0.5853"))
Y_TARGET = (1, 2, 0)
PRINTED_TENSORS = {
    # name: (method, rows as printed)
    "soft_output": ("softmax", (("0.8131", "0.0540", "0.1329"),
                                ("0.6039", "0.1860", "0.2102"),
                                ("0.0841", "0.3076", "0.6083"))),
    "log_output": ("log_of_softmax", (("-0.2069", "-2.9192", "-2.0178"),
                                      ("-0.5044", "-1.6822", "-1.5599"),
                                      ("-2.4762", "-1.1790", "-0.4970"))),
    "logsoftmax_output": ("log_softmax", (("-0.2069", "-2.9192", "-2.0178"),
                                          ("-0.5044", "-1.6822", "-1.5599"),
                                          ("-2.4762", "-1.1790", "-0.4970"))),
}
#: the printed elements that the printed inputs do not reproduce, but their rounding does (checked)
_OFF_BY_INPUT_ROUNDING = {("soft_output", 1, 2), ("soft_output", 2, 2),
                          ("log_output", 1, 2), ("logsoftmax_output", 1, 2)}
_RUN = "3x3 PyTorch run"
_RUN_CONTEXT = "x_input is printed to 4 decimals: the true inputs lie within ±0.00005 of it"
_PRINTOUT = "(PyTorch's printout: nothing to translate)"


def _printout_lines(header: str, first: int = 0, count: int = 1) -> str:
    """Lines ``first .. first+count-1`` after ``header`` in :data:`RUN_PRINTOUT`, stripped."""
    lines = RUN_PRINTOUT.splitlines()
    start = lines.index(header) + 1 + first
    return "\n".join(line.strip() for line in lines[start:start + count])


def _row_printed(r: int) -> dict:
    """All printed outputs of row ``r`` by method: the joint check of a row uses them."""
    return {method: rows[r] for method, rows in PRINTED_TENSORS.values()}


def _printed_tensor_examples() -> list:
    out = []
    for name, (method, rows) in PRINTED_TENSORS.items():
        for r, row in enumerate(rows):
            passage = OMISSION.join(("x_input:", _printout_lines("x_input:", r), f"{name}:",
                                     _printout_lines(f"{name}:", r)))
            for k, printed in enumerate(row):
                out.append(WorkedExample(
                    S1, _RUN, f"{name}[{r}][{k}]", method,
                    {"x": X_INPUT[r], "k": k, "row_printed": _row_printed(r)}, printed,
                    "rounding" if (name, r, k) in _OFF_BY_INPUT_ROUNDING else "agrees",
                    passage, f"row {r} of the printed x_input and of the printed {name} {_PRINTOUT}"))
    return out


def _loss_printout(name: str) -> str:
    return ("x_input:\n" + _printout_lines("x_input:", 0, 3) + "\ny_target\n" + _printout_lines("y_target")
            + OMISSION + f"{name}:\n" + _printout_lines(f"{name}:"))


_S1 = [
    WorkedExample(S1, "information", "I(x0) when p(x0) = 1", "claim_information_zero_at_certainty",
                  {"p": "1"}, "熵将等于0，也就是说该事件的发生不会导致任何信息量的增加", "agrees",
                  "I(x0)=−log(p(x_0))" + OMISSION + "p(x_0)%3D1" + OMISSION
                  + "时，熵将等于0，也就是说该事件的发生不会导致任何信息量的增加。",
                  "I(x0) = −log(p(x0))" + OMISSION + "p(x0) = 1" + OMISSION + "then the entropy equals 0, "
                  "that is, the event's occurrence brings no increase in information at all. (The formulas "
                  "are image links in the text, %3D standing for '='.)",
                  "the text says 熵 (entropy) where it means the information I(x0) = -log p(x0)"),
    WorkedExample(S1, "shooting", "Xiaoming's entropy is low", "claim_binary_entropy_below_maximum",
                  {"p": _SHOOTING["p_hit_xiaoming"]}, "小明打靶结果的不确定度较低，毕竟十次有9次都脱靶", "agrees",
                  _SHOOTING_PASSAGE, _SHOOTING_TRANSLATION,
                  _SHOOTING_IMAGES + "; 'low' read as: below the maximum log 2 of a 0-1 distribution"),
    WorkedExample(S1, "shooting", "Xiaowang's entropy is lower", "claim_binary_entropy_order",
                  {"p_higher": _SHOOTING["p_hit_xiaoming"], "p_lower": _SHOOTING["p_hit_xiaowang"]},
                  "但是小王打靶结果的不确定度更低，1000次射击只有1次脱靶", "agrees",
                  _SHOOTING_PASSAGE, _SHOOTING_TRANSLATION, _SHOOTING_IMAGES),
    WorkedExample(S1, "q1/q2 cross-entropy", "H(p,q2) < H(p,q1)", "claim_cross_entropy_order",
                  {"p": ("1", "0", "0"), "q_farther": ("0.5", "0.2", "0.3"), "q_closer": ("0.8", "0.1", "0.1")},
                  "q2与p更为接近，它的交叉熵也更小", "agrees",
                  OMISSION.join(("那么该公式如何表示，举个例子，假设N=3，期望输出为", "p%3D(1%2C0%2C0)", "，实际输出",
                                 "q1%3D(0.5%2C0.2%2C0.3)", "q2%3D(0.8%2C0.1%2C0.1)", "，那么：",
                                 "通过上面可以看出，q2与p更为接近，它的交叉熵也更小。")),
                  OMISSION.join(("How is the formula used? An example: suppose N = 3 and the expected output is",
                                 "p = (1, 0, 0)", ", the actual outputs", "q1 = (0.5, 0.2, 0.3)",
                                 "q2 = (0.8, 0.1, 0.1)", ", then:",
                                 "From the above, q2 is closer to p, and its cross-entropy is also smaller. (The "
                                 "distributions are image links in the text, %3D standing for '=' and %2C for "
                                 "',').")),
                  "the two cross-entropies were an image (image-20200331200558370.png) missing from the text; "
                  "only the text's ordering is checked"),
    WorkedExample(S1, _RUN, "softmax in (0,1), log < 0", "claim_softmax_in_unit_interval",
                  {"x": X_INPUT}, "Softmax后的数值都在0~1之间，所以ln之后值域是负无穷到0", "agrees",
                  "1、Softmax后的数值都在0~1之间，所以ln之后值域是负无穷到0。",
                  "1. After Softmax the values all lie between 0 and 1, so after ln the range is minus "
                  "infinity to 0."),
    WorkedExample(S1, _RUN, "NLLLoss = mean of -L[r][y_r]", "claim_nll_loss_is_mean_of_picked",
                  {"x": X_INPUT, "target": Y_TARGET},
                  "NLLLoss的结果就是把上面的输出与Label对应的那个值拿出来", "agrees",
                  "3、NLLLoss的结果就是把上面的输出与Label对应的那个值拿出来(下面例子中就是：将log_output\\"
                  "logsoftmax_output中与y_target对应的值拿出来)，去掉负号，再求均值。",
                  "3. The result of NLLLoss is: take out the value of the output above that corresponds to the "
                  "label (in the example below: take the values of log_output\\logsoftmax_output that "
                  "correspond to y_target), drop the minus sign, then take the mean."),
    *_printed_tensor_examples(),
    WorkedExample(S1, _RUN, "softmax rows sum to 1", "claim_softmax_rows_sum_to_one",
                  {"x": X_INPUT, "printed": PRINTED_TENSORS["soft_output"][1]},
                  "此时可以看到每一行加到一起结果都是1", "agrees",
                  "#计算输入softmax，此时可以看到每一行加到一起结果都是1",
                  "# compute the softmax of the input; now one can see that each row adds up to 1"),
    WorkedExample(S1, _RUN, "log(softmax) == LogSoftmax", "claim_log_of_softmax_is_log_softmax",
                  {"x": X_INPUT}, "对比softmax与log的结合与nn.LogSoftmaxloss(负对数似然损失)的输出结果，发现两者是一致的",
                  "agrees",
                  "#对比softmax与log的结合与nn.LogSoftmaxloss(负对数似然损失)的输出结果，发现两者是一致的。",
                  "# compare the output of softmax combined with log with that of nn.LogSoftmaxloss (negative "
                  "log-likelihood loss): the two are found to be the same.",
                  "the comment calls LogSoftmax a 负对数似然损失 (negative log-likelihood loss): "
                  "it is the log-softmax; the loss is NLLLoss"),
    WorkedExample(S1, _RUN, "nlloss_output", "nll_loss_of_log_softmax",
                  {"x": X_INPUT, "target": Y_TARGET}, "2.3185", "agrees",
                  _loss_printout("nlloss_output"), f"the printed inputs, targets and NLLLoss output {_PRINTOUT}",
                  _RUN_CONTEXT),
    WorkedExample(S1, _RUN, "crossentropyloss_output", "cross_entropy_loss",
                  {"x": X_INPUT, "target": Y_TARGET}, "2.3185", "agrees",
                  _loss_printout("crossentropyloss_output"),
                  f"the printed inputs, targets and CrossEntropyLoss output {_PRINTOUT}", _RUN_CONTEXT),
    WorkedExample(S1, _RUN, "CrossEntropyLoss == softmax-log-NLLLoss", "claim_ce_is_log_softmax_nll",
                  {"x": X_INPUT, "target": Y_TARGET},
                  "直接使用pytorch中的loss_func=nn.CrossEntropyLoss()计算得到的结果与softmax-log-NLLLoss计算得到的结果是一致的",
                  "agrees",
                  "通过上面的结果可以看出，直接使用pytorch中的loss_func=nn.CrossEntropyLoss()计算得到的结果与"
                  "softmax-log-NLLLoss计算得到的结果是一致的。",
                  "The results above show that the result computed directly with PyTorch's "
                  "loss_func=nn.CrossEntropyLoss() is the same as the one computed with softmax-log-NLLLoss."),
]

# --- S2: claims without numbers, checked on small concrete data -------------------------------

#: a small batch with class weights and an ignored target, for S2's claims (not from the article)
_BATCH = {"x": (("1", "2", "0"), ("0", "0", "3"), ("2", "-1", "1"), ("0", "1", "1"), ("1", "1", "-2")),
          "target": (0, 2, 1, 2, 1), "weight": ("0.5", "2", "1.5"), "ignore_index": 1}
_CONSTRUCTED = "the article gives no numbers: checked on the concrete data in the inputs"
_FORMULA_1 = r"loss(x,class) = -\log\left(\frac{\exp(x[class])}{\sum_j \exp(x[j])} \right)"
_FORMULA_2 = r"loss(x,class) = -weight[class]\log\left(\frac{\exp(x[class])}{\sum_j \exp(x[j])} \right)"
_FORMULA_MEAN = r"\mathcal{L}(X,class) = \frac{\sum_{x\in X}loss(x,class[x])}{\sum_{x\in X}weight[class[x]]}"

_S2 = [
    WorkedExample(S2, "cross-entropy", "H(p,q) != H(q,p)", "claim_cross_entropy_not_symmetric",
                  {"p": ("0.5", "0.5"), "q": ("0.9", "0.1")}, "注意交叉熵不满足对称性", "agrees",
                  "注意交叉熵不满足对称性。", "Note that cross-entropy is not symmetric.", _CONSTRUCTED),
    WorkedExample(S2, "loss formula (1)", "loss(x,class) = catalogue", "claim_formula_is_softmax_cross_entropy",
                  {"weighted": False}, _FORMULA_1, "agrees",
                  "CrossEntropyLoss的输入值为\"unnormalized scores for each class\"，即未限制在(0,1)上的各个类别的得分。"
                  "其表达式为" + OMISSION + _FORMULA_1,
                  "The input of CrossEntropyLoss is \"unnormalized scores for each class\", i.e. the scores of "
                  "the classes, not restricted to (0,1). Its expression is" + OMISSION + _FORMULA_1,
                  "checked for a symbolic number of classes n"),
    WorkedExample(S2, "weighted loss formula", "weighted loss = catalogue",
                  "claim_formula_is_softmax_cross_entropy", {"weighted": True}, _FORMULA_2, "agrees",
                  "或当weight不为空时，" + OMISSION + _FORMULA_2,
                  "or, when weight is not None," + OMISSION + _FORMULA_2,
                  "checked for a symbolic number of classes n"),
    WorkedExample(S2, "weighted mean", "mean = sum loss / sum weight", "claim_weighted_mean",
                  {k: _BATCH[k] for k in ("x", "target", "weight")}, _FORMULA_MEAN, "agrees",
                  "最终，总损失为每个样本$x$上的损失的加权平均，即" + OMISSION + _FORMULA_MEAN,
                  "Finally, the total loss is the weighted average of the losses on the samples $x$, i.e."
                  + OMISSION + _FORMULA_MEAN, _CONSTRUCTED),
    WorkedExample(S2, "LogSoftmax+NLLLoss", "row loss, symbolic n", "claim_ce_row_is_log_softmax_nll",
                  {}, "`CrossEntropyLoss`是`NLLLoss`和`LogSoftmax`的结合体", "agrees",
                  "This criterion combines **LogSoftmax** and **NLLLoss** in one single class." + OMISSION
                  + "也就是说，`CrossEntropyLoss`是`NLLLoss`和`LogSoftmax`的结合体。",
                  "This criterion combines **LogSoftmax** and **NLLLoss** in one single class." + OMISSION
                  + "That is, `CrossEntropyLoss` is the combination of `NLLLoss` and `LogSoftmax`.",
                  "checked for a symbolic number of classes n, with class weights"),
    WorkedExample(S2, "LogSoftmax+NLLLoss", "batch, weights, ignore_index", "claim_ce_batch_is_log_softmax_nll",
                  dict(_BATCH), "`NLLLoss` 在其他部分的计算过程与 `CrossEntropyLoss` 完全一致", "agrees",
                  "因此，如果`CrossEntropyLoss`的输入值是 $(x,class)$， 那么 `NLLLoss` 的输入值就是 "
                  "$LogSoftmax(x), class$。" + OMISSION
                  + "除此之外，`NLLLoss` 在其他部分的计算过程与 `CrossEntropyLoss` 完全一致。",
                  "So if the input of `CrossEntropyLoss` is $(x,class)$, the input of `NLLLoss` is "
                  "$LogSoftmax(x), class$." + OMISSION
                  + "Apart from that, the rest of `NLLLoss`'s computation is exactly the same as "
                  "`CrossEntropyLoss`'s.",
                  _CONSTRUCTED + "; all three reductions"),
]

# --- S3: five samples; the printed arithmetic pairs the one-hot with the wrong probability -------

_Q = {0: ("0.2", "0.6", "0.2"), 1: ("0.7", "0.2", "0.1"), 2: ("0.1", "0.1", "0.8")}  # "类别 k 的预测概率分布"
_ORDINAL = {1: ("（1）对于第一个样本", "(1) For the first sample"), 2: ("（2）对于第二个样本", "(2) For the second sample"),
            3: ("（3）对于第三个样本", "(3) For the third sample"), 4: ("（4）对于第四个样本", "(4) For the fourth sample"),
            5: ("（5）对于第五个样本", "(5) For the fifth sample")}
#: (sample, label, the weights the printed expression puts on log q, stated)
_SAMPLES = ((1, 1, ("1", "0", "0"), "0.36"),
            (2, 0, ("0", "1", "0"), "0.51"),
            (3, 2, ("0", "0", "1"), "0.22"),
            (4, 1, ("1", "0", "0"), "0.36"),
            (5, 2, ("0", "0", "1"), "0.22"),
            ("1 (repeated)", 1, ("1", "0", "0"), "0.36"))  # a stray copy of sample 1 after the list
_LN = "the stated losses use the natural log"
MARKDOWN_TIMES = r"\*"  # the article escapes its '*' for markdown


def _sample_passage(sample, label: int, weights: tuple, stated: str) -> tuple:
    """The article's lines for one sample, verbatim (markdown escapes included), and their translation."""
    one_hot = ", ".join("1" if m == label else "0" for m in range(3))
    q = ", ".join(_Q[label])

    def expression(times: str) -> str:
        return f"-1 {times} (" + " + ".join(f"{w} {times} log({qm})" for w, qm in zip(weights, _Q[label])) + ")"
    lines = [f"真实标签概率分布：[{one_hot}]", f"模型预测概率分布：[{q}]", f"交叉熵损失：{expression(MARKDOWN_TIMES)} ≈ {stated}"]
    english = [f"true label distribution: [{one_hot}]", f"model's predicted distribution: [{q}]",
               f"cross-entropy loss: {expression('*')} ≈ {stated}"]
    if sample in _ORDINAL:
        lines.insert(0, f"{_ORDINAL[sample][0]}（真实标签为 {label}）：")
        english.insert(0, f"{_ORDINAL[sample][1]} (true label {label}):")
    return "\n".join(lines), "\n".join(english)


def _sample_examples() -> list:
    out = []
    for sample, label, weights, stated in _SAMPLES:
        name = f"sample {sample}"
        right = weights == tuple("1" if m == label else "0" for m in range(3))
        passage, translation = _sample_passage(sample, label, weights, stated)
        out.append(WorkedExample(S3, name, "printed expression", "cross_entropy",
                                 {"p": weights, "q": _Q[label]}, stated, "agrees", passage, translation,
                                 _LN + "; p = the weights the printed expression puts on log q"))
        out.append(WorkedExample(S3, name, f"loss of label {label}", "one_hot_cross_entropy",
                                 {"label": label, "q": _Q[label], "printed_expression_weights": weights}, stated,
                                 "agrees" if right else "disagrees", passage, translation, _LN))
    return out


_S3 = _sample_examples()

# --- S4: information table, entropy, single- and multi-label losses ---------------------------

_NATURAL = "the article's note: 文中的对数均为自然对数 (natural logs)"
_NATURAL_PASSAGE = "注：文中的对数均为自然对数"
_NATURAL_TRANSLATION = "Note: the logarithms in the text are all natural logarithms"
_TABLE_INTRO = ("假设你拿出了你的电脑，按下开关，会有三种可能性，下表列出了每一种可能的概率及其对应的信息量",
                "Suppose you take out your computer and press the switch: there are three possibilities; the "
                "table below lists the probability of each and its information")
_TABLE_ROWS = {"A": ("电脑正常开机", "the computer starts normally", "0.7", "0.36"),
               "B": ("电脑无法开机", "the computer cannot start", "0.2", "1.61"),
               "C": ("电脑爆炸了", "the computer explodes", "0.1", "2.30")}


def _table_row(name: str) -> WorkedExample:
    event, english, p, stated = _TABLE_ROWS[name]
    cells = (name, event, p, f"-log(p({name}))={stated}")
    row = "".join(f'<td align="center">{cell}</td>' for cell in cells)
    return WorkedExample(
        S4, "computer table", f"I({name}), p({name}) = {p}", "self_information", {"p": p}, stated, "agrees",
        OMISSION.join((_TABLE_INTRO[0], row, _NATURAL_PASSAGE)),
        OMISSION.join((_TABLE_INTRO[1], f"(table row, in HTML) {name} | {english} | {p} | "
                                         f"-log(p({name}))={stated}", _NATURAL_TRANSLATION)), _NATURAL)


_MULTI_LABEL = {  # part: (English, the article's expression for it, as printed)
    "猫": ("cat", "loss 猫 =−0×log(0.1)−(1−0)log(1−0.1)=−log(0.9)"),
    "蛙": ("frog", "loss 蛙 =−1×log(0.7)−(1−1)log(1−0.7)=−log(0.7)"),
    "鼠": ("mouse", "loss 鼠 =−1×log(0.8)−(1−1)log(1−0.8)=−log(0.8)"),
}
_MULTI_LABEL_INTRO = ("例子中可以计算为：", "In the example this computes as:")


def _multi_label_part(part: str, p: str, t: str, neg_log: str) -> WorkedExample:
    english, printed = _MULTI_LABEL[part]
    return WorkedExample(S4, "multi-label", f"loss {part} ({english})", "bce_exact",
                         {"p": p, "t": t, "stated_neg_logs": (neg_log,)}, f"−log({neg_log})", "agrees",
                         _MULTI_LABEL_INTRO[0] + OMISSION + printed,
                         _MULTI_LABEL_INTRO[1] + OMISSION + printed.replace(part, f"{part} ({english})"))


_S4 = [
    *(_table_row(name) for name in _TABLE_ROWS),
    WorkedExample(S4, "computer table", "H(X)", "entropy",
                  {"p": ("0.7", "0.2", "0.1"), "rounded_information_decimals": 2}, "0.804", "rounding",
                  "其中 n 代表所有的 n 种可能性，所以上面的问题结果就是" + OMISSION
                  + "$$H(X)=−[p(A)log(p(A))+p(B)log(p(B))+p(C))log(p(C))]=0.7×0.36+0.2×1.61+0.1×2.30=0.804$$",
                  "where n stands for all the n possibilities, so the result of the problem above is" + OMISSION
                  + "$$H(X)=−[p(A)log(p(A))+p(B)log(p(B))+p(C))log(p(C))]=0.7×0.36+0.2×1.61+0.1×2.30=0.804$$",
                  _NATURAL),
    WorkedExample(S4, "0-1 distribution", "H(p, 1-p) = binary entropy", "claim_entropy_of_two_is_binary",
                  {}, "H(X)=−∑i=1np(xi)log(p(xi))=−p(x)log(p(x))−(1−p(x))log(1−p(x))", "agrees",
                  "我们称之为 0-1 分布问题（二项分布的特例），对于这类问题，熵的计算方法可以简化为如下算式：" + OMISSION
                  + "$$H(X)=−∑i=1np(xi)log(p(xi))=−p(x)log(p(x))−(1−p(x))log(1−p(x))$$",
                  "We call these 0-1 distribution problems (a special case of the binomial distribution); for "
                  "such problems the entropy simplifies to" + OMISSION
                  + "$$H(X)=−∑i=1np(xi)log(p(xi))=−p(x)log(p(x))−(1−p(x))log(1−p(x))$$ (the sum's limits i=1 "
                  "and n lost their sub- and superscripts in the text)",
                  "checked for a symbolic p"),
    WorkedExample(S4, "KL decomposition", "D(p||q) = -H(p) + H(p,q)", "claim_kl_is_cross_entropy_minus_entropy",
                  {}, "DKL(p||q)=∑i=1np(xi)log(p(xi))−∑i=1np(xi)log(q(xi))=−H(p(x))+[−∑i=1np(xi)log(q(xi))]",
                  "agrees",
                  "对式 3.1 变形可以得到：" + OMISSION
                  + "$$DKL(p||q)=∑i=1np(xi)log(p(xi))−∑i=1np(xi)log(q(xi))=−H(p(x))+[−∑i=1np(xi)log(q(xi))]$$"
                  + OMISSION + "等式的前一部分恰巧就是 p 的熵，等式的后一部分，就是交叉熵：",
                  "Rearranging formula 3.1 gives:" + OMISSION
                  + "$$DKL(p||q)=∑i=1np(xi)log(p(xi))−∑i=1np(xi)log(q(xi))=−H(p(x))+[−∑i=1np(xi)log(q(xi))]$$"
                  + OMISSION + "The first part of the equation is exactly the entropy of p, and the second part "
                  "is the cross-entropy:",
                  "checked for a symbolic number of classes n"),
    WorkedExample(S4, "single-label", "cat/frog/mouse loss", "cross_entropy_exact",
                  {"p": ("0", "1", "0"), "q": ("0.3", "0.6", "0.1"), "stated_neg_logs": ("0.6",)},
                  "−log(0.6)", "agrees",
                  "<table><thead><tr><th>*</th><th>猫</th><th>青蛙</th><th>老鼠</th></tr></thead><tbody><tr>"
                  "<td>Label</td><td>0</td><td>1</td><td>0</td></tr><tr><td>Pred</td><td>0.3</td><td>0.6</td>"
                  "<td>0.1</td></tr></tbody></table>" + OMISSION + "那么" + OMISSION
                  + "$$loss=−(0×log(0.3)+1×log(0.6)+0×log(0.1)=−log(0.6)$$",
                  "(table, in HTML) * | cat | frog | mouse; Label | 0 | 1 | 0; Pred | 0.3 | 0.6 | 0.1" + OMISSION
                  + "then" + OMISSION + "$$loss=−(0×log(0.3)+1×log(0.6)+0×log(0.1)=−log(0.6)$$"),
    _multi_label_part("猫", "0.1", "0", "0.9"),
    _multi_label_part("蛙", "0.7", "1", "0.7"),
    _multi_label_part("鼠", "0.8", "1", "0.8"),
    WorkedExample(S4, "multi-label", "cat+frog+mouse loss", "multilabel_bce_exact",
                  {"p": ("0.1", "0.7", "0.8"), "t": ("0", "1", "1"), "stated_neg_logs": ("0.9", "0.7", "0.8")},
                  "loss=loss 猫 +loss 蛙 +loss 鼠", "agrees",
                  _MULTI_LABEL_INTRO[0] + OMISSION + "$$" + "".join(e for _, e in _MULTI_LABEL.values()) + "$$"
                  + OMISSION + "单张样本的 loss 即为 $loss=loss 猫 +loss 蛙 +loss 鼠$",
                  _MULTI_LABEL_INTRO[1] + OMISSION + "$$" + "".join(e for _, e in _MULTI_LABEL.values()) + "$$"
                  + OMISSION + "The loss of a single sample is $loss=loss 猫 +loss 蛙 +loss 鼠$ (cat, frog, "
                  "mouse)",
                  "stated as the sum of the three stated parts −log(0.9) − log(0.7) − log(0.8)"),
]

#: every worked example of the four articles, in source order
WORKED_EXAMPLES: tuple = tuple(_S1 + _S2 + _S3 + _S4)
