"""Bad arguments to the catalogue raise clear errors naming the problem."""
import pytest
import sympy as sp

import symxent as sx


def test_unknown_reduction_uses_torch_wording():
    with pytest.raises(ValueError, match="avg is not a valid value for reduction"):
        sx.cross_entropy_loss([[1, 2]], [0], reduction="avg")


@pytest.mark.parametrize("probabilities", [(-0.1, 1.1), (0.5, 1.5)])
def test_probabilities_outside_unit_interval_are_rejected(probabilities):
    with pytest.raises(ValueError, match="is not a probability"):
        sx.entropy(probabilities)
    with pytest.raises(ValueError, match="is not a probability"):
        sx.cross_entropy((0.5, 0.5), probabilities)


@pytest.mark.parametrize("eps", [-0.1, 1.5])
def test_label_smoothing_outside_unit_interval_is_rejected(eps):
    with pytest.raises(ValueError, match=f"label_smoothing must be between 0.0 and 1.0. Got: {eps}"):
        sx.softmax_cross_entropy((1, 2, 3), 0, label_smoothing=eps)


@pytest.mark.parametrize("base", ["furlongs", 1, 0, -2, None])
def test_unknown_log_base_is_rejected(base):
    with pytest.raises(ValueError, match="log base"):
        sx.entropy((0.5, 0.5), base=base)


def test_named_bases_are_accepted():
    h_bits = sx.entropy((sp.Rational(1, 2), sp.Rational(1, 2)), base="bits")
    assert sp.simplify(h_bits - 1) == 0


def test_target_out_of_bounds_uses_torch_wording():
    with pytest.raises(IndexError, match="Target 5 is out of bounds."):
        sx.cross_entropy_loss([[1, 2, 3]], [5])


def test_weight_of_wrong_length_uses_torch_wording():
    with pytest.raises(ValueError, match="weight tensor should be defined either for all 3 classes or no classes"):
        sx.cross_entropy_loss([[1, 2, 3]], [0], weight=[1, 2])


def test_probability_targets_refuse_a_nonnegative_ignore_index():
    with pytest.raises(ValueError, match="ignore_index is not supported for floating point target"):
        sx.cross_entropy_loss([[1, 2]], [[sp.Rational(1, 2), sp.Rational(1, 2)]], ignore_index=0)


def test_bce_input_outside_unit_interval_uses_torch_wording():
    with pytest.raises(ValueError, match="all elements of input should be between 0 and 1"):
        sx.bce(1.5, 1)


def test_strings_are_never_parsed_as_vectors():
    with pytest.raises(TypeError, match="strings are not parsed"):
        sx.softmax(("__import__('os')", 1))


def test_mismatched_vector_lengths_are_rejected():
    with pytest.raises(ValueError, match="different numbers of classes"):
        sx.cross_entropy((0.5, 0.5), (0.2, 0.3, 0.5))


@pytest.mark.parametrize("call", [
    lambda s: sx.bce_with_logits(s, 1),
    lambda s: sx.bce(s, 1),
    lambda s: sx.softmax_cross_entropy((1, 2), s),
    lambda s: sx.softmax((1, 2), s),
    lambda s: sx.self_information(s),
    lambda s: sx.xlogy(s, 2),
    lambda s: sx.reduce([s], "sum"),
])
def test_string_arguments_are_never_evaluated(call, tmp_path):
    """A string where a number belongs is a TypeError; sympify would have run it."""
    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    with pytest.raises(TypeError, match="strings are not parsed"):
        call(payload)
    assert not marker.exists()


def test_derivation_and_user_loss_refuse_strings(tmp_path):
    from symxent.derive import gradient

    marker = tmp_path / "pwned"
    payload = f"__import__('pathlib').Path({str(marker)!r}).write_text('x')"
    with pytest.raises(TypeError, match="strings are not parsed"):
        gradient(payload, sx.vector("z"))
    with pytest.raises(TypeError, match="strings are not parsed"):
        sx.Loss.from_expr(payload, name="evil")
    assert not marker.exists()
