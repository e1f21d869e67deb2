"""The source articles' worked examples: transcribed faithfully, and their verdicts derived independently.

Expected values here come from mpmath (60 digits), ``math.log`` and ``fractions.Fraction`` written in
the test, and from the passages kept with the examples (the articles' own text, verbatim), never from
the catalogue under test. Nothing here reads a file outside the repository.
"""
from __future__ import annotations

import json
import re
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import mpmath
import pytest

import symxent.examples.check as check_module
from symxent.examples import SOURCES, WORKED_EXAMPLES, Source, WorkedExample, check_example, run_examples, \
    verify_checks
from symxent.examples.check import CLAIMS, NUMERIC, SYMBOLIC, exact
from symxent.examples.documents import (NOT_STATED, OMISSION, PRINTED_TENSORS, RUN_PRINTOUT, VERDICTS, X_INPUT,
                                        Y_TARGET)

ROOT = Path(__file__).resolve().parents[1]
mpmath.mp.dps = 60
HALF_UNIT_4 = mpmath.mpf("0.00005")


@pytest.fixture(scope="module")
def results():
    return run_examples()


@pytest.fixture(scope="module")
def by_key(results):
    """Results keyed by (source, example, quantity)."""
    table = {(r.source, r.example, r.quantity): r for r in results}
    assert len(table) == len(results), "every (source, example, quantity) names one record"
    return table


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (tuple, list)):
        for v in value:
            yield from _strings(v)


# --- sources and passages ------------------------------------------------------------------

def test_the_four_sources_carry_the_citation_fields_they_state():
    """Title, author, date, URL as the articles state them; the literal "not stated" where they do not."""
    assert list(SOURCES) == ["S1", "S2", "S3", "S4"]
    assert all(isinstance(s, Source) and SOURCES[s.key] is s for s in SOURCES.values())
    s1, s2, s3, s4 = SOURCES.values()
    assert (s1.date, s2.author, s4.account) == ("2019-12-22", "LiJT", "tsyccnh")
    assert s1.url.startswith("https://mp.weixin.qq.com/s?__biz=") and "ShuYini" in s1.author
    assert s4.url == "https://blog.csdn.net/tsyccnh/article/details/79163834"
    assert (s2.date, s2.url) == (NOT_STATED, NOT_STATED) and (s3.author, s3.date, s3.url) == (NOT_STATED,) * 3
    assert (s4.author, s4.date) == (NOT_STATED, NOT_STATED)
    for source in SOURCES.values():
        assert source.title and source.note and all(v.strip() for v in (source.author, source.date, source.url))
        assert source.date == NOT_STATED or re.fullmatch(r"\d{4}-\d{2}-\d{2}", source.date)
        assert source.url == NOT_STATED or source.url.startswith("https://")
    assert s3.citation() == '[S3] "CrossEntropyLoss()损失函数", author not stated, date not stated, URL not stated'
    assert s4.citation() == ('[S4] "关于交叉熵在 loss 函数中使用的理解", author not stated (blog account tsyccnh), '
                             'date not stated, https://blog.csdn.net/tsyccnh/article/details/79163834')


def test_every_example_has_a_known_source_a_passage_and_a_translation():
    for ex in WORKED_EXAMPLES:
        assert ex.source in SOURCES.values() and SOURCES[ex.source.key] is ex.source, ex
        assert ex.passage.strip() and ex.translation.strip(), (ex.source.key, ex.example, ex.quantity)
        assert ex.translation != ex.passage and all(piece.strip() for piece in ex.passage.split(OMISSION))
    assert {ex.source.key for ex in WORKED_EXAMPLES} == set(SOURCES)
    assert all(ex.expected_verdict in VERDICTS for ex in WORKED_EXAMPLES)


def test_every_stated_value_is_printed_verbatim_in_its_passage():
    """A stated value or claim is kept exactly as printed (so its printed precision is kept too)."""
    for ex in WORKED_EXAMPLES:
        assert ex.stated in ex.passage, (ex.source.key, ex.example, ex.quantity, ex.stated)


def test_inputs_of_numeric_examples_are_numbers_their_passage_prints():
    """No input was changed to make a value pass: every input string appears in the passage."""
    for ex in WORKED_EXAMPLES:
        if ex.method in NUMERIC or ex.method in SYMBOLIC:
            inputs = {k: v for k, v in ex.inputs.items() if k != "row_printed"}  # the row's other outputs
            for s in _strings(inputs):
                assert s in ex.passage, (ex.source.key, ex.example, ex.quantity, s)
            if "row_printed" in ex.inputs:
                r = X_INPUT.index(tuple(ex.inputs["x"]))
                assert ex.inputs["row_printed"] == {m: rows[r] for m, rows in PRINTED_TENSORS.values()}


def _printed_tensor(text: str, name: str) -> list:
    block = re.search(rf"{name}:\s*\n\s*tensor\((\[.*?\]\])\)", text, re.S).group(1)
    return [re.findall(r"-?\d+\.\d+", row) for row in re.findall(r"\[([^\[\]]+)\]", block)]


def test_printed_pytorch_run_is_transcribed_element_by_element():
    """S1's printed tensors, parsed from its printout, are the data's inputs and stated values."""
    x = _printed_tensor(RUN_PRINTOUT, "x_input")
    assert [list(row) for row in X_INPUT] == x
    stated = {ex.quantity: ex for ex in WORKED_EXAMPLES if ex.source.key == "S1"}
    for name in ("soft_output", "log_output", "logsoftmax_output"):
        for r, row in enumerate(_printed_tensor(RUN_PRINTOUT, name)):
            assert list(PRINTED_TENSORS[name][1][r]) == row
            for k, printed in enumerate(row):
                ex = stated[f"{name}[{r}][{k}]"]
                assert ex.stated == printed and list(ex.inputs["x"]) == x[r] and ex.inputs["k"] == k
    assert "y_target\n tensor([1, 2, 0])" in RUN_PRINTOUT and Y_TARGET == (1, 2, 0)
    for quantity in ("nlloss_output", "crossentropyloss_output"):
        ex = stated[quantity]
        assert tuple(ex.inputs["target"]) == (1, 2, 0) and [list(r) for r in ex.inputs["x"]] == x
        assert re.search(rf"{quantity}:\n tensor\({ex.stated}\)", RUN_PRINTOUT)


def test_passages_of_the_printed_run_are_lines_of_the_printout():
    run = [ex for ex in WORKED_EXAMPLES if ex.source.key == "S1" and ex.method in NUMERIC]
    assert len(run) == 29
    for ex in run:
        for piece in ex.passage.split(OMISSION):
            assert all(line in RUN_PRINTOUT for line in piece.split("\n")), (ex.quantity, piece)


def test_s3_passages_state_the_label_and_prediction_of_their_inputs():
    for ex in WORKED_EXAMPLES:
        if ex.source.key == "S3":
            label, q = ex.inputs.get("label"), ex.inputs["q"]
            assert f"模型预测概率分布：[{', '.join(q)}]" in ex.passage
            if label is not None and ex.example != "sample 1 (repeated)":  # the stray copy has no heading
                assert f"（真实标签为 {label}）" in ex.passage


def test_the_readme_cites_every_source_as_recorded():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for source in SOURCES.values():
        assert f'[{source.key}] "{source.title}"' in readme
        assert source.url == NOT_STATED or f"<{source.url}>" in readme


# --- the repository is self-contained about its sources --------------------------------------

#: what nothing in the repository may contain: paths outside it, the archived copies' names or hashes
#: (spelt in pieces here, so that this file does not contain them either)
FORBIDDEN = ("shared" + "/seeds", ".." + "/shared", "097d806f" "e62eab93", "354c26b8" "e3d13452",
             "c432bc89" "376246f4", "8b953191" "ebbf0183")


def _repository_files() -> list:
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                                capture_output=True, check=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout: no file list")
    return [ROOT / name for name in listed.decode().split("\0") if name and ".git" not in Path(name).parts]


def test_no_file_in_the_repository_refers_to_the_archived_copies():
    files = [path for path in _repository_files() if path.is_file()]
    assert len(files) > 50 and Path(__file__).resolve() in files
    found = {}
    for path in files:
        data = path.read_bytes()
        hits = [word for word in FORBIDDEN if word.encode() in data]
        if hits:
            found[str(path.relative_to(ROOT))] = hits
    assert not found, "\n".join(f"{name}: {', '.join(hits)}" for name, hits in sorted(found.items()))


# --- S1: the 3x3 PyTorch run -------------------------------------------------------

def _mp_softmax_row(row):
    z = [mpmath.mpf(v) for v in row]
    lse = mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z))
    return [mpmath.exp(v - lse) for v in z], [v - lse for v in z]


def _mp_element(method, row, k):
    probs, logs = _mp_softmax_row(row)
    return probs[k] if method == "softmax" else logs[k]


def _mp_range_over_input_box(method, row, k):
    """Exact range over |dx| <= 0.00005: the element rises with x_k and falls with the others."""
    corners = []
    for sign in (-1, 1):
        z = [mpmath.mpf(v) + (sign if m == k else -sign) * HALF_UNIT_4 for m, v in enumerate(row)]
        corners.append(_mp_element(method, z, k))
    return corners


def test_pytorch_run_elements_agree_or_are_explained_by_input_rounding(by_key):
    """Each printed softmax / log-softmax element: agrees to 4 decimals, or the 4-decimal printing of
    x_input explains it (the stated value lies within reach over the input box)."""
    x = _printed_tensor(RUN_PRINTOUT, "x_input")
    off = set()
    for name, method in (("soft_output", "softmax"), ("log_output", "log"), ("logsoftmax_output", "log")):
        printed = _printed_tensor(RUN_PRINTOUT, name)
        for r in range(3):
            for k in range(3):
                value = _mp_element(method, x[r], k)
                stated = mpmath.mpf(printed[r][k])
                result = by_key[("S1", "3x3 PyTorch run", f"{name}[{r}][{k}]")]
                assert abs(float(result.computed) - float(value)) < 1e-8
                if abs(value - stated) <= HALF_UNIT_4:
                    assert result.verdict == "agrees", result
                    continue
                off.add((name, r, k))
                low, high = _mp_range_over_input_box(method, x[r], k)
                assert low - HALF_UNIT_4 <= stated <= high + HALF_UNIT_4  # within reach: rounding
                assert result.verdict == "rounding", result
                assert "printed rounded to 4 decimals" in result.note and "reproduces all 9" in result.note
    # the four elements the printed inputs miss by one in the 4th decimal
    assert off == {("soft_output", 1, 2), ("soft_output", 2, 2), ("log_output", 1, 2), ("logsoftmax_output", 1, 2)}


def test_pytorch_run_single_row_reproduces_row_1_and_row_2():
    """The rounding explanation is joint: x + (0, 0, ±0.00005) reproduces every printed value of the row."""
    text = RUN_PRINTOUT
    x, soft, logs = (_printed_tensor(text, n) for n in ("x_input", "soft_output", "logsoftmax_output"))
    for r, shift in ((1, HALF_UNIT_4), (2, -HALF_UNIT_4)):
        z = [mpmath.mpf(v) for v in x[r]]
        z[2] += shift
        probs, lsm = _mp_softmax_row(z)
        for k in range(3):
            assert abs(probs[k] - mpmath.mpf(soft[r][k])) <= HALF_UNIT_4
            assert abs(lsm[k] - mpmath.mpf(logs[r][k])) <= HALF_UNIT_4


def test_pytorch_run_losses_agree_with_2_3185(by_key):
    """nlloss_output and crossentropyloss_output: mean of logsumexp(x_r) - x_r[y_r] = 2.31846... -> 2.3185."""
    x = _printed_tensor(RUN_PRINTOUT, "x_input")
    loss = mpmath.fsum(-_mp_softmax_row(row)[1][y] for row, y in zip(x, (1, 2, 0))) / 3
    assert abs(loss - mpmath.mpf("2.3185")) <= HALF_UNIT_4
    for quantity in ("nlloss_output", "crossentropyloss_output"):
        result = by_key[("S1", "3x3 PyTorch run", quantity)]
        assert result.verdict == "agrees" and abs(float(result.computed) - float(loss)) < 1e-8


def test_shooting_and_q1_q2_claims_hold_as_the_text_states_them(by_key):
    """H(0.999) < H(0.1) < log 2 (any base), and H(p, q2) = -ln 0.8 < H(p, q1) = ln 2."""
    def h(p):
        return -p * mpmath.log(p) - (1 - p) * mpmath.log(1 - p)
    h_ming, h_wang = h(mpmath.mpf("0.1")), h(mpmath.mpf("0.999"))
    assert h_wang < h_ming < mpmath.log(2)
    assert h_wang / mpmath.log(2) < h_ming / mpmath.log(2)  # bits: the same order
    lower = by_key[("S1", "shooting", "Xiaowang's entropy is lower")]
    assert lower.verdict == "agrees" and lower.computed == f"{float(h_wang):.6f} < {float(h_ming):.6f}"
    assert by_key[("S1", "shooting", "Xiaoming's entropy is low")].verdict == "agrees"
    q = by_key[("S1", "q1/q2 cross-entropy", "H(p,q2) < H(p,q1)")]
    h_q2, h_q1 = -mpmath.log(mpmath.mpf("0.8")), mpmath.log(2)
    assert q.verdict == "agrees" and q.computed == f"{float(h_q2):.6f} < {float(h_q1):.6f}"


def test_s1_claims_agree(results):
    claims = [r for r, ex in zip(results, WORKED_EXAMPLES) if ex.source.key == "S1" and ex.method in CLAIMS]
    assert len(claims) == 9 and all(r.verdict == "agrees" for r in claims)


# --- S2: claims on concrete data -------------------------------------------------------------

def test_s2_claims_agree_and_the_weighted_mean_is_sum_over_summed_weights(results, by_key):
    """The weighted mean recomputed with mpmath: sum w[y](lse - x[y]) / sum w[y]."""
    claims = [r for r in results if r.source == "S2"]
    assert len(claims) == 6 and all(r.verdict == "agrees" for r in claims)
    ex = next(e for e in WORKED_EXAMPLES if e.method == "claim_weighted_mean")
    w = [mpmath.mpf(v) for v in ex.inputs["weight"]]
    num = den = mpmath.mpf(0)
    for row, y in zip(ex.inputs["x"], ex.inputs["target"]):
        z = [mpmath.mpf(v) for v in row]
        num += w[y] * (mpmath.log(mpmath.fsum(mpmath.exp(v) for v in z)) - z[y])
        den += w[y]
    result = by_key[("S2", "weighted mean", "mean = sum loss / sum weight")]
    assert abs(float(result.computed) - float(num / den)) < 1e-8
    ce = by_key[("S2", "cross-entropy", "H(p,q) != H(q,p)")]
    h_pq = -(mpmath.log(mpmath.mpf("0.9")) + mpmath.log(mpmath.mpf("0.1"))) / 2
    assert ce.computed == f"{float(h_pq):.6f} != {float(mpmath.log(2)):.6f}"


# --- S3: the five samples -------------------------------------------------------------------

SAMPLES_002 = {  # sample: (label, prediction as printed, stated)
    "sample 1": (1, ("0.7", "0.2", "0.1"), "0.36"), "sample 2": (0, ("0.2", "0.6", "0.2"), "0.51"),
    "sample 3": (2, ("0.1", "0.1", "0.8"), "0.22"), "sample 4": (1, ("0.7", "0.2", "0.1"), "0.36"),
    "sample 5": (2, ("0.1", "0.1", "0.8"), "0.22"), "sample 1 (repeated)": (1, ("0.7", "0.2", "0.1"), "0.36"),
}


@pytest.mark.parametrize("sample", list(SAMPLES_002))
def test_s3_loss_follows_from_label_only_where_the_expression_uses_the_labelled_class(sample, results):
    """-ln q[label] is the loss; the stated value is -ln max(q) (the printed expression's value)."""
    label, q, stated = SAMPLES_002[sample]
    loss = -mpmath.log(mpmath.mpf(q[label]))
    printed_expression = -mpmath.log(max(mpmath.mpf(v) for v in q))
    assert round(float(printed_expression), 2) == float(stated)
    records = {r.quantity: r for r in results if r.source == "S3" and r.example == sample}
    assert records["printed expression"].verdict == "agrees"
    from_label = records[f"loss of label {label}"]
    assert abs(float(from_label.computed) - float(loss)) < 1e-6
    if round(float(loss), 2) == float(stated):
        assert from_label.verdict == "agrees"
    else:
        assert from_label.verdict == "disagrees"
        assert f"{float(loss):.6f}" in from_label.note and "argmax" in from_label.note
        assert f"-log {q[label]}" in from_label.note


def test_s3_verdict_counts(results):
    verdicts = [r.verdict for r in results if r.source == "S3"]
    assert verdicts.count("disagrees") == 4 and verdicts.count("agrees") == 8


# --- S4: table, entropy, single- and multi-label losses ---------------------------------------

def test_s4_information_table_agrees_to_two_decimals(by_key):
    for p, stated, name in (("0.7", "0.36", "A"), ("0.2", "1.61", "B"), ("0.1", "2.30", "C")):
        value = -mpmath.log(mpmath.mpf(p))
        assert abs(value - mpmath.mpf(stated)) <= mpmath.mpf("0.005")
        result = by_key[("S4", "computer table", f"I({name}), p({name}) = {p}")]
        assert result.verdict == "agrees" and abs(float(result.computed) - float(value)) < 1e-6


def test_s4_entropy_0_804_comes_from_the_rounded_informations(by_key):
    """H = 0.80182 (0.802), but 0.7*0.36 + 0.2*1.61 + 0.1*2.30 = 0.804 exactly: `rounding`."""
    ps = ("0.7", "0.2", "0.1")
    h = -mpmath.fsum(mpmath.mpf(p) * mpmath.log(mpmath.mpf(p)) for p in ps)
    assert abs(h - mpmath.mpf("0.804")) > mpmath.mpf("0.0005")
    rounded_sum = sum(Fraction(p) * Fraction(info) for p, info in zip(ps, ("0.36", "1.61", "2.30")))
    assert rounded_sum == Fraction("0.804")
    result = by_key[("S4", "computer table", "H(X)")]
    assert result.verdict == "rounding" and abs(float(result.computed) - float(h)) < 1e-6
    assert "0.7×0.36 + 0.2×1.61 + 0.1×2.30 = 0.804" in result.note


@pytest.mark.parametrize("quantity, value", [
    ("cat/frog/mouse loss", -mpmath.log(mpmath.mpf("0.6"))),
    ("loss 猫 (cat)", -mpmath.log(mpmath.mpf("0.9"))),
    ("loss 蛙 (frog)", -mpmath.log(mpmath.mpf("0.7"))),
    ("loss 鼠 (mouse)", -mpmath.log(mpmath.mpf("0.8"))),
    ("cat+frog+mouse loss", -mpmath.log(mpmath.mpf("0.9") * mpmath.mpf("0.7") * mpmath.mpf("0.8"))),
])
def test_s4_symbolic_losses_are_exactly_the_stated_logs(quantity, value, results):
    result = next(r for r in results if r.source == "S4" and r.quantity == quantity)
    assert result.verdict == "agrees"
    shown = float(re.search(r"= (-?\d+\.\d{8})", result.note).group(1))
    assert abs(shown - float(value)) < 1e-8


def test_s4_claims_agree(results):
    claims = [r for r, ex in zip(results, WORKED_EXAMPLES) if ex.source.key == "S4" and ex.method in CLAIMS]
    assert len(claims) == 2 and all(r.verdict == "agrees" for r in claims)


# --- verdicts can fail ------------------------------------------------------------------------

def _variant(method, inputs, stated, quantity="variant"):
    return WorkedExample(SOURCES["S1"], "variant", quantity, method, inputs, stated, "agrees", "passage",
                         "translation")


def test_a_wrong_stated_value_is_reported_not_explained():
    """0.2200 is out of reach of the input rounding: disagrees; a swapped ordering claim fails."""
    row = ("1.1216", "-0.0562", "0.0660")
    assert check_example(_variant("softmax", {"x": row, "k": 2}, "0.2200")).verdict == "disagrees"
    assert check_example(_variant("softmax", {"x": row, "k": 2}, "0.2101")).verdict == "agrees"
    swapped = {"p": ("1", "0", "0"), "q_farther": ("0.8", "0.1", "0.1"), "q_closer": ("0.5", "0.2", "0.3")}
    assert check_example(_variant("claim_cross_entropy_order", swapped, "")).verdict == "disagrees"
    same = {"p": ("0.5", "0.5"), "q": ("0.5", "0.5")}
    assert check_example(_variant("claim_cross_entropy_not_symmetric", same, "")).verdict == "disagrees"
    wrong_log = {"p": ("0", "1", "0"), "q": ("0.3", "0.6", "0.1"), "stated_neg_logs": ("0.3",)}
    assert check_example(_variant("cross_entropy_exact", wrong_log, "")).verdict == "disagrees"
    unrounded = {"p": ("0.7", "0.2", "0.1")}  # without the document's rounding, 0.804 is not explained
    assert check_example(_variant("entropy", unrounded, "0.804")).verdict == "disagrees"


def test_verify_checks_pass_and_catch_a_catalogue_regression(monkeypatch):
    checks = verify_checks()
    assert len(checks) == len(WORKED_EXAMPLES)
    assert all(check.run()[0] for check in checks), [c.name for c in checks if not c.run()[0]]
    # a regression: self-information in bits instead of nats
    real = check_module.self_information
    monkeypatch.setattr(check_module, "self_information", lambda p, base=2: real(p, 2))
    failed = [check.name for check in checks if not check.run()[0]]
    assert sorted(failed) == sorted(f"S4 computer table: {q}" for q in (
        "I(A), p(A) = 0.7", "I(B), p(B) = 0.2", "I(C), p(C) = 0.1", "H(X)"))


def test_inputs_are_parsed_as_exact_decimals_only():
    assert exact("99.9%") == Fraction(999, 1000) and exact("-0.0562") == Fraction(-562, 10000)
    for bad in ("1/3", "exp(1)", "0.1e3", " 1", 0.5):
        with pytest.raises(ValueError):
            exact(bad)


# --- records -------------------------------------------------------------------------------

def test_records_serialise_to_json_with_the_cli_keys(results):
    records = json.loads(json.dumps([r.to_dict() for r in results], ensure_ascii=False))
    assert all(set(r) == {"source", "example", "quantity", "stated", "computed", "verdict", "note", "passage",
                          "translation"}
               for r in records)
    assert all(r["verdict"] in VERDICTS for r in records)
    assert all(r["note"] for r in records if r["verdict"] != "agrees")


def test_run_examples_is_fast():
    start = time.perf_counter()
    run_examples()
    assert time.perf_counter() - start < 5
