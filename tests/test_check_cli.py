"""``handgrad check`` end to end: in-process with capsys, and once as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest
import torch

from handgrad.checking import builtin
from handgrad.cli import main

USER_MODULE = textwrap.dedent(
    '''
    import torch

    class BadMSE(torch.autograd.Function):
        """Forgets the 2 of the square."""

        @staticmethod
        def forward(Y_hat, Y):
            return ((Y_hat - Y) ** 2).sum() / Y_hat.shape[0]

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(*inputs)

        @staticmethod
        def backward(ctx, g):
            Y_hat, Y = ctx.saved_tensors
            grad = g * (Y_hat - Y) / Y_hat.shape[0]
            return grad, -grad

    def square_sum(x):
        return (x * x).sum()

    NOT_CALLABLE = 3
    '''
)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A fresh module file in a fresh current directory; returns its (unique) name."""
    name = f"user_fns_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{name}.py").write_text(USER_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the CLI adds the cwd; undo it
    return name


def test_no_target_checks_the_projects_functions(capsys):
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    for name, _, _ in builtin.FUNCTIONS:
        assert out.count(f"\n{name} ") == len(builtin.SIZES) * len(builtin.DTYPES)
    assert "float32" in out and "float64" in out and "WRONG" not in out
    n_rows = len(builtin.FUNCTIONS) * len(builtin.SIZES) * len(builtin.DTYPES)
    assert f"{n_rows} of {n_rows} checks OK" in out


def test_no_target_exits_1_when_a_builtin_function_is_wrong(capsys, monkeypatch):
    from gallery import MSEMissingTwo

    monkeypatch.setattr(
        builtin, "FUNCTIONS", (("MSE", MSEMissingTwo, lambda q, n, p: ((q, p),) * 2),)
    )
    monkeypatch.setattr(builtin, "SIZES", ((4, 3, 2),))
    assert main(["check"]) == 1
    out = capsys.readouterr().out
    assert "input 0 (Y_hat): scaled" in out and "0 of 2 checks OK" in out


def test_no_target_json_has_one_report_per_row(capsys, monkeypatch):
    monkeypatch.setattr(builtin, "SIZES", ((1, 1, 1),))
    assert main(["check", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(builtin.FUNCTIONS) * len(builtin.DTYPES)
    assert rows[0]["sizes"] == {"q": 1, "n": 1, "p": 1}
    assert all(row["report"]["ok"] for row in rows)


def test_target_with_a_wrong_gradient_exits_1_and_names_it(user_module, capsys):
    code = main(["check", f"{user_module}:BadMSE", "--input", "5,3", "--input", "5,3"])
    out = capsys.readouterr().out
    assert code == 1
    assert "input 0 (Y_hat): scaled: analytic ≈ 1/2 × numeric" in out
    assert "input 1 (Y): scaled" in out


def test_target_that_is_right_exits_0(user_module, capsys):
    assert main(["check", f"{user_module}:square_sum", "--input", "4"]) == 0
    assert "square_sum (callable): OK" in capsys.readouterr().out


def test_json_output(user_module, capsys):
    args = ["check", f"{user_module}:BadMSE", "--input", "2,2", "--input", "2,2", "--json"]
    assert main([*args, "--seed", "3"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["seed"] == 3
    assert [entry["factor"] for entry in data["inputs"]] == [0.5, 0.5]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["check", "no_colon"], "must have the form module:Attr"),
        (["check", "missing_module_xyz:F", "--input", "3"], "no module named 'missing_module_xyz'"),
        (["check", "{mod}:Nope", "--input", "3"], "has no attribute 'Nope'; its Functions and"),
        (["check", "{mod}:NOT_CALLABLE", "--input", "3"], "is a int, not a torch.autograd"),
        (["check", "{mod}:BadMSE", "--input", "3,x"], "--input '3,x' is not a shape"),
        (["check", "{mod}:BadMSE", "--input", "0,2"], "is not a shape"),
        (["check", "{mod}:BadMSE"], "give each argument of"),
        (["check", "{mod}:BadMSE", "--input", "3,2"], "raised TypeError"),
        (["check", "--input", "3"], "--input needs a target"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(user_module, capsys, argv, message):
    code = main([arg.replace("{mod}", user_module) for arg in argv])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert err.startswith("handgrad check: error: ") and err.count("\n") == 1


def test_real_subprocess_from_a_user_directory(tmp_path):
    (tmp_path / "tests_module.py").write_text(USER_MODULE)
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": str(src)}
    argv = ["-m", "handgrad", "check", "tests_module:BadMSE", "--input", "6,2", "--input", "6,2"]
    result = subprocess.run(
        [sys.executable, *argv], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 1, result.stderr
    assert "input 0 (Y_hat): scaled" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


WORLD_MODULE = textwrap.dedent(
    """
    import torch

    class Power(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, k):
            ctx.save_for_backward(x)
            ctx.k = k
            return x ** k

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x ** (ctx.k - 1), None  # the factor k is missing

    class Log(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return torch.log(x).sum()

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g / x

    class CrossEntropy(torch.autograd.Function):
        @staticmethod
        def forward(ctx, Z, t, scale, mean):
            logp = torch.log_softmax(Z, 1)
            ctx.save_for_backward(logp, t)
            ctx.scale, ctx.mean = scale, mean
            loss = -logp.gather(1, t[:, None]).sum() * scale
            return loss / len(t) if mean else loss

        @staticmethod
        def backward(ctx, g):
            logp, t = ctx.saved_tensors
            P = logp.exp()
            P[torch.arange(len(t)), t] -= 1
            return g * ctx.scale * P / (len(t) if ctx.mean else 1), None, None, None
    """
)


@pytest.fixture
def world_dir(tmp_path, monkeypatch):
    """World functions as chk/funcs.py (a plain folder) and pkg/sub/funcs.py (packages)."""
    (tmp_path / "chk").mkdir()
    (tmp_path / "chk" / "funcs.py").write_text(WORLD_MODULE)
    package = f"pkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / package / "sub").mkdir(parents=True)
    for folder in (tmp_path / package, tmp_path / package / "sub"):
        (folder / "__init__.py").write_text("")
    (tmp_path / package / "sub" / "funcs.py").write_text(WORLD_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return package


@pytest.mark.parametrize(
    "target",
    ["chk/funcs.py:Power", "chk/funcs:Power", "{pkg}/sub/funcs.py:Power", "{pkg}.sub.funcs:Power"],
)
def test_file_and_package_targets_and_an_int_argument(world_dir, capsys, target):
    argv = ["check", target.format(pkg=world_dir), "--input", "4,3", "--input", "int:3"]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "input 0 (x): scaled: analytic ≈ 1/3 (with 3 = input 1 (k))" in out
    assert "input 1" not in out.split("input 0 (x)")[0]  # k gets no entry of its own
    assert "input 1: int 3" in out


def test_a_file_target_in_the_current_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "myfuncs.py").write_text(WORLD_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert main(["check", "myfuncs.py:Power", "--input", "3", "--input", "int:2"]) == 1


def test_domain_positive_keeps_log_defined(world_dir, capsys):
    assert main(["check", "chk/funcs.py:Log", "--input", "4,3"]) == 3
    out = capsys.readouterr().out
    assert "UNDEFINED — the forward is undefined at these inputs" in out
    assert "input 0 (x): undefined" in out and "WRONG" not in out
    assert main(["check", "chk/funcs.py:Log", "--input", "4,3", "--domain", "positive"]) == 0
    assert main(["check", "chk/funcs.py:Log", "--input", "4,3:0.1..3"]) == 0
    assert "uniform in [0.1, 3]" in capsys.readouterr().out


def test_index_float_and_bool_inputs(world_dir, capsys):
    argv = ["check", "chk/funcs.py:CrossEntropy", "--input", "5,3", "--input", "5:index=3"]
    assert main([*argv, "--input", "float:0.5", "--input", "bool:true", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["diagnosis"] for e in data["inputs"]] == ["ok", "ok"]
    assert data["inputs"][1]["checked"] is False and data["inputs"][1]["dtype"] == "int64"
    assert data["drawn_inputs"][1] == "input 1: (5,) int64 class indices in 0..2"
    assert data["drawn_inputs"][2:] == ["input 2: float 0.5", "input 3: bool True"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input", "4,3:postive"], "'postive' is not a domain; use normal, positive"),
        (["--input", "4,3", "--domain", "3..1"], "--domain: '3..1' is not a domain"),
        (["--input", "int:3.5"], "--input 'int:3.5': '3.5' is not a int"),
        (["--input", "bool:maybe"], "'maybe' is not a bool"),
        (["--input", "4:index=0"], "'index=0' is not a domain"),
        (
            ["--input", "4,3", "--device", "gpu7"],
            "--device gpu7 is not a device; use auto, cpu, cuda, cuda:1 or mps.",  # mps: checks
        ),
        (["--input", "4,3", "--domain", "index=3"], "give it per input"),
    ],
)
def test_bad_input_syntax_is_one_line_and_exit_2(world_dir, capsys, argv, message):
    assert main(["check", "chk/funcs.py:Log", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("chk/nope.py:Log", "no file chk/nope.py"),
        ("chk/funcs.py:Nope", "chk/funcs.py has no attribute 'Nope'; its Functions and "),
        ("nosuchmod.sub:F", "folder that holds nosuchmod/sub.py"),
    ],
)
def test_bad_targets_name_the_path(world_dir, capsys, target, message):
    assert main(["check", target, "--input", "3"]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_device_cuda_without_cuda_is_a_usage_error(world_dir, capsys):
    assert main(["check", "chk/funcs.py:Log", "--input", "3", "--device", "cuda"]) == 2
    assert "no CUDA device is available here" in capsys.readouterr().err


@pytest.mark.parametrize("compute_on", ["auto", "cpu"])
def test_device_and_compute_on_say_where_the_gradients_were_computed(
    world_dir, capsys, device, compute_on
):
    # On the device under test (HANDGRAD_TEST_DEVICE): there, or on CPU copies when asked
    # (or when the device has no float64).
    argv = ["check", "chk/funcs.py:Log", "--input", "3:positive", "--device", str(device)]
    assert main([*argv, "--compute-on", compute_on, "--json"]) == 0
    where = json.loads(capsys.readouterr().out)["device"]
    on_device = compute_on == "auto" and device.type != "mps"
    assert where == ("cpu" if not on_device else str(torch.empty(0, device=device).device))


def test_the_builtin_table_says_where_it_computed(capsys, device):
    assert main(["check", "--device", str(device), "--compute-on", "cpu"]) == 0
    assert "checks OK (numeric gradients in float64, on cpu)." in capsys.readouterr().out
