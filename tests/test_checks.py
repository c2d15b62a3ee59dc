import pytest
import torch

from labsupport.checks import CheckFailed, call, check_close, check_dtype, check_equal, check_shape, in_range


def test_check_close_reports_worst_element_and_errors():
    expected = torch.zeros(2, 3)
    got = expected.clone()
    got[1, 2] = 0.5
    with pytest.raises(CheckFailed) as e:
        check_close(got, expected, what="attention output", hint="scale by sqrt(d_k)")
    msg = str(e.value)
    assert "max abs error 0.5 at index (1, 2)" in msg and "hint:     scale by sqrt(d_k)" in msg
    check_close(expected + 1e-7, expected, what="tiny difference passes")


def test_check_close_flags_nan_and_shape():
    with pytest.raises(CheckFailed, match="non-finite"):
        check_close(torch.tensor([float("nan")]), torch.tensor([0.0]), what="weights")
    with pytest.raises(CheckFailed, match=r"expected: \(3, 2\)"):
        check_shape(torch.zeros(2, 3), (3, 2), what="scores")
    with pytest.raises(CheckFailed, match="wrong dtype"):
        check_dtype(torch.zeros(2, dtype=torch.int64), torch.bool, what="mask")


def test_check_equal_points_at_first_difference_and_type():
    with pytest.raises(CheckFailed, match="first difference at position 2"):
        check_equal([1, 2, 3], [1, 2, 4], what="ids")
    with pytest.raises(CheckFailed, match="wrong values"):
        check_equal({"a": 1}, {"a": 2}, what="counts")
    with pytest.raises(CheckFailed):
        check_equal((1, 2), [1, 2], what="a list is asked for")


def test_call_turns_not_implemented_into_a_hint():
    def stub():
        raise NotImplementedError()

    with pytest.raises(CheckFailed, match="not implemented yet"):
        call(stub, what="stub()")


def test_in_range():
    in_range("accuracy", 0.9, 0.8, 1.0)
    with pytest.raises(CheckFailed, match="outside the expected range"):
        in_range("accuracy", 0.5, 0.8, 1.0)
