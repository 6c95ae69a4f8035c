"""Where the checker computes, decided without the hardware: the placement rule on
device objects, and inputs that hold no values refused with a sentence."""

from __future__ import annotations

import pytest
import torch

import handgrad
from gallery import LIN, tensors
from handgrad.checking.placement import choose_device, placement_for, to_float64

CPU, CUDA, MPS = torch.device("cpu"), torch.device("cuda:0"), torch.device("mps")


@pytest.mark.parametrize(
    ("devices", "requested", "where", "says"),
    [
        ([CPU, CPU], "auto", "cpu", "given on cpu"),
        ([CUDA, CUDA], "auto", "cuda:0", "given on cuda:0"),
        ([CUDA, CPU], "auto", "cuda:0", "given on cuda:0, cpu"),  # a 0-dim CPU scalar
        ([MPS], "auto", "cpu", "which has no float64"),
        ([CUDA], "cpu", "cpu", "device='cpu' asked for"),
        ([CPU], "cuda:1", "cuda:1", "device='cuda:1' asked for"),
        ([], "auto", "cpu", "no tensor input"),
    ],
)
def test_placement_rule(devices, requested, where, says):
    place = choose_device(devices, requested)
    assert place.device == torch.device(where)
    assert says in place.describe()
    copies = "CPU copies" if where == "cpu" else f"copies on {where}"
    assert place.describe().startswith(copies)


@pytest.mark.parametrize(
    ("devices", "requested", "match"),
    [
        ([torch.device("meta")], "auto", "meta device, which holds no values"),
        ([CUDA, torch.device("cuda:1")], "auto", r"several devices \(cuda:0, cuda:1\)"),
        ([CPU], "mps", "has no float64"),
    ],
)
def test_placement_refusals_are_sentences(devices, requested, match):
    with pytest.raises(ValueError, match=match):
        choose_device(devices, requested)


@pytest.mark.parametrize("requested", ["auto", "cpu"])
def test_a_cpu_array_beside_cuda_inputs_is_refused_whatever_the_request(requested):
    # The copies would all live on one device, so the check would pass where the
    # user's own call crashes.
    with pytest.raises(ValueError, match=r"cuda:0, cpu: a CPU tensor .* move it to cuda:0"):
        choose_device([CUDA, CPU], requested, cpu_arrays=True)
    assert choose_device([CPU, CPU], requested, cpu_arrays=True).device == CPU


def test_meta_inputs_are_refused_not_crashed_on():
    X, W, b = (torch.empty(s, device="meta") for s in LIN)
    with pytest.raises(ValueError, match="holds no values"):
        handgrad.check(handgrad.Linear, X, W, b)


def test_copies_go_to_the_chosen_device_in_float64_and_index_tensors_keep_their_dtype():
    X, t = torch.randn(3, 2), torch.tensor([0, 1, 1])
    copy, index, k = to_float64([X, t, 3], "cpu")
    assert copy.dtype == torch.float64 and index.dtype == torch.int64 and k == 3
    assert placement_for([X, t, 3]).device == CPU


def test_the_report_says_where_it_computed():
    report = handgrad.check(handgrad.Linear, *tensors(*LIN, dtype=torch.float32), device="cpu")
    assert report.device == "cpu"
    assert "float64 on CPU copies of the inputs" in report.precision
    assert report.to_dict()["device"] == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_inputs_are_checked_on_cuda_and_on_cpu_copies():  # pragma: no cover
    inputs = [x.cuda() for x in tensors(*LIN, dtype=torch.float32)]
    on_device = handgrad.check(handgrad.Linear, *inputs)
    assert on_device.ok and on_device.device.startswith("cuda")
    on_cpu = handgrad.check(handgrad.Linear, *inputs, device="cpu")
    assert on_cpu.ok and on_cpu.device == "cpu"
