"""Real-world-style Functions: the ones people write beyond the lab, right and wrong.

Elementwise maps with a domain (log, sqrt), exp, an int exponent, softmax and
cross-entropy, several outputs, bool and str flags, in-place forwards (mark_dirty),
backward passes that read ctx.needs_input_grad or the deprecated ctx.saved_variables.
Each is listed in ``WORLD`` with the ``--input`` specs it is checked on (the syntax of
``handgrad check``), its expected verdict and the expected diagnosis of each tensor
input. Specs may hold {q}, {n} and {m} (= n + 1), which the tests fill with random
sizes for the right ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from handgrad.checking.inputs import make_inputs, parse_spec

Function = torch.autograd.Function


class Log(Function):
    """log x, forward(ctx, …) style: ∂/∂x = g / x, defined for x > 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / x


class LogSignFlipped(Log):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return -g / x


class LogSum(Function):
    """Σ log x: one NaN anywhere makes the whole (scalar) output undefined."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.log(x).sum()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / x


class Sqrt(Function):
    """√x, setup_context style, saving the output: ∂/∂x = g / (2√x)."""

    @staticmethod
    def forward(x):
        return torch.sqrt(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g / (2 * y)


class SqrtMissingHalf(Sqrt):
    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g / y


class Exp(Function):
    """eˣ, saving its output: ∂/∂x = g eˣ."""

    @staticmethod
    def forward(ctx, x):
        y = torch.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class ExpWithJvp(Function):
    """eˣ with forward mode: ``save_for_forward`` and ``jvp``."""

    @staticmethod
    def forward(x):
        return torch.exp(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(output)
        ctx.save_for_forward(output)

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y

    @staticmethod
    def jvp(ctx, t):
        (y,) = ctx.saved_tensors
        return t * y


class ExpJvpWrong(ExpWithJvp):
    """Right backward, wrong jvp: only the forward-mode check can see it."""

    @staticmethod
    def jvp(ctx, t):
        return t


class Power(Function):
    """xᵏ for an int k: ∂/∂x = g k xᵏ⁻¹, and None for k."""

    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x**k

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ctx.k * x ** (ctx.k - 1), None


class PowerMissingK(Power):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * x ** (ctx.k - 1), None


class PowerOffByOne(Power):
    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ctx.k * x**ctx.k, None


class Softmax(Function):
    """softmax along dim: ∂/∂x = y ⊙ (g − Σ g ⊙ y)."""

    @staticmethod
    def forward(ctx, x, dim):
        y = torch.softmax(x, dim)
        ctx.save_for_backward(y)
        ctx.dim = dim
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(ctx.dim, keepdim=True)), None


class SoftmaxDiagonalOnly(Softmax):
    """Keeps only the diagonal of the Jacobian, y(1 − y)."""

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y * (1 - y), None


class SoftmaxOrLog(Function):
    """softmax, or log-softmax when the bool flag ``log`` is set."""

    @staticmethod
    def forward(ctx, x, log):
        y = torch.log_softmax(x, -1) if log else torch.softmax(x, -1)
        ctx.save_for_backward(y)
        ctx.log = log
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        if ctx.log:
            return g - y.exp() * g.sum(-1, keepdim=True), None
        return y * (g - (g * y).sum(-1, keepdim=True)), None


class SoftmaxOrLogWrongLog(SoftmaxOrLog):
    """The log branch reuses the softmax formula on log-probabilities."""

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return y * (g - (g * y).sum(-1, keepdim=True)), None


class CrossEntropy(Function):
    """Mean cross-entropy of logits Z (q, c) against int64 targets t (q,)."""

    @staticmethod
    def forward(ctx, Z, t):
        logp = torch.log_softmax(Z, 1)
        ctx.save_for_backward(logp, t)
        return -logp.gather(1, t[:, None]).mean()

    @staticmethod
    def backward(ctx, g):
        logp, t = ctx.saved_tensors
        P = logp.exp()
        P[torch.arange(len(t)), t] -= 1
        return g * P / len(t), None


class CrossEntropyNoMean(CrossEntropy):
    @staticmethod
    def backward(ctx, g):
        logp, t = ctx.saved_tensors
        P = logp.exp()
        P[torch.arange(len(t)), t] -= 1
        return g * P, None


class CrossEntropyIgnoresG(CrossEntropy):
    @staticmethod
    def backward(ctx, g):
        logp, t = ctx.saved_tensors
        P = logp.exp()
        P[torch.arange(len(t)), t] -= 1
        return P / len(t), None


class SinCos(Function):
    """Two outputs, (sin x, cos x): ∂/∂x = g₁ cos x − g₂ sin x."""

    @staticmethod
    def forward(x):
        return torch.sin(x), torch.cos(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g_sin, g_cos):
        (x,) = ctx.saved_tensors
        return g_sin * torch.cos(x) - g_cos * torch.sin(x)


class SinCosForgetsCos(SinCos):
    @staticmethod
    def backward(ctx, g_sin, g_cos):
        (x,) = ctx.saved_tensors
        return g_sin * torch.cos(x)


class SinCosCosSign(SinCos):
    @staticmethod
    def backward(ctx, g_sin, g_cos):
        (x,) = ctx.saved_tensors
        return g_sin * torch.cos(x) + g_cos * torch.sin(x)


class MaxWithIndex(Function):
    """Row maxima and their (non-differentiable) positions, like torch.max(x, 1)."""

    @staticmethod
    def forward(ctx, x):
        values, index = x.max(1)
        ctx.save_for_backward(index)
        ctx.shape = x.shape
        ctx.mark_non_differentiable(index)
        return values, index

    @staticmethod
    def backward(ctx, g_values, g_index):
        (index,) = ctx.saved_tensors
        grad = g_values.new_zeros(ctx.shape)
        return grad.scatter_(1, index[:, None], g_values[:, None])


class SplitHalves(Function):
    """(2 x[:, :h], x[:, h:]²), with set_materialize_grads(False): a None may arrive."""

    @staticmethod
    def forward(x):
        h = x.shape[1] // 2
        return 2 * x[:, :h], x[:, h:] ** 2

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g_a, g_b):
        (x,) = ctx.saved_tensors
        h = x.shape[1] // 2
        grad = torch.zeros_like(x)
        if g_a is not None:
            grad[:, :h] = 2 * g_a
        if g_b is not None:
            grad[:, h:] = 2 * x[:, h:] * g_b
        return grad


class ScaleInPlace(Function):
    """x ← c·x in place (ctx.mark_dirty), c a float: ∂/∂x = c g."""

    @staticmethod
    def forward(ctx, x, c):
        ctx.c = c
        x.mul_(c)
        ctx.mark_dirty(x)
        return x

    @staticmethod
    def backward(ctx, g):
        return g * ctx.c, None


class ScaleInPlaceForgetsC(ScaleInPlace):
    @staticmethod
    def backward(ctx, g):
        return g, None


class MulNeeds(Function):
    """a ⊙ b, computing each gradient only when ctx.needs_input_grad asks."""

    @staticmethod
    def forward(a, b):
        return a * b

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = g * b
        if ctx.needs_input_grad[1]:
            grad_b = g * a
        return grad_a, grad_b


class MulNeedsWrongIndex(MulNeeds):
    """Guards b's gradient with a's flag: right until a is frozen."""

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        grad_a = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_a = g * b
            grad_b = g * a
        return grad_a, grad_b


class MatmulSavedVariables(Function):
    """X W, reading the deprecated ctx.saved_variables, which torch still supports."""

    @staticmethod
    def forward(ctx, X, W):
        ctx.save_for_backward(X, W)
        return X @ W

    @staticmethod
    def backward(ctx, G):
        X, W = ctx.saved_variables
        return G @ W.T, X.T @ G


class SumRows(Function):
    """Σ over axis 0, keeping the input's shape on ctx: ∂/∂x = g broadcast back."""

    @staticmethod
    def forward(ctx, x):
        ctx.shape = x.shape
        return x.sum(0)

    @staticmethod
    def backward(ctx, g):
        return g.expand(ctx.shape)


class SumRowsNotExpanded(SumRows):
    @staticmethod
    def backward(ctx, g):
        return g


class SigmoidOutputOnCtx(Function):
    """σ(x), keeping the output as ``ctx.output`` (a name handgrad's Context must leave free)."""

    @staticmethod
    def forward(x):
        return torch.sigmoid(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.output = output

    @staticmethod
    def backward(ctx, g):
        y = ctx.output
        return g * y * (1 - y)


class Huber(Function):
    """Mean Huber loss of x − y with a float threshold delta."""

    @staticmethod
    def forward(x, y, delta):
        r = x - y
        a = r.abs()
        return torch.where(a <= delta, 0.5 * r * r, delta * (a - 0.5 * delta)).mean()

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, y, delta = inputs
        ctx.save_for_backward(x, y)
        ctx.delta = delta

    @staticmethod
    def backward(ctx, g):
        x, y = ctx.saved_tensors
        r = x - y
        grad = torch.where(r.abs() <= ctx.delta, r, ctx.delta * r.sign()) * g / r.numel()
        return grad, -grad, None


class BinaryCrossEntropy(Function):
    """Mean of −y log p − (1 − y) log(1 − p), for p and soft labels y in (0, 1)."""

    @staticmethod
    def forward(ctx, p, y):
        ctx.save_for_backward(p, y)
        return -(y * torch.log(p) + (1 - y) * torch.log(1 - p)).mean()

    @staticmethod
    def backward(ctx, g):
        p, y = ctx.saved_tensors
        n = p.numel()
        return g * (p - y) / (p * (1 - p)) / n, g * (torch.log(1 - p) - torch.log(p)) / n


class Standardize(Function):
    """(x − mean) / √(var + ε) along the last axis, as in layer norm."""

    @staticmethod
    def forward(x):
        mean = x.mean(-1, keepdim=True)
        std = torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
        return (x - mean) / std

    @staticmethod
    def setup_context(ctx, inputs, output):
        x = inputs[0]
        std = torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
        ctx.save_for_backward(output, std)

    @staticmethod
    def backward(ctx, g):
        y, std = ctx.saved_tensors
        return (g - g.mean(-1, keepdim=True) - y * (g * y).mean(-1, keepdim=True)) / std


class StandardizeNoVarTerm(Standardize):
    @staticmethod
    def backward(ctx, g):
        y, std = ctx.saved_tensors
        return (g - g.mean(-1, keepdim=True)) / std


class Cumsum(Function):
    """Cumulative sum along dim: ∂/∂x is the reversed cumulative sum of g."""

    @staticmethod
    def forward(ctx, x, dim):
        ctx.dim = dim
        return x.cumsum(dim)

    @staticmethod
    def backward(ctx, g):
        d = ctx.dim
        return g.flip(d).cumsum(d).flip(d), None


class CumsumNotReversed(Cumsum):
    @staticmethod
    def backward(ctx, g):
        return g.cumsum(ctx.dim), None


class LinearOptionalBias(Function):
    """X W (+ b when b is not None), with b passed as None."""

    @staticmethod
    def forward(ctx, X, W, b):
        ctx.save_for_backward(X, W)
        ctx.has_bias = b is not None
        out = X @ W
        return out + b if b is not None else out

    @staticmethod
    def backward(ctx, G):
        X, W = ctx.saved_tensors
        return G @ W.T, X.T @ G, G.sum(0) if ctx.has_bias else None


class MSEReduction(Function):
    """Σ (Ŷ − Y)², divided by the number of elements when reduction is "mean"."""

    @staticmethod
    def forward(Y_hat, Y, reduction):
        D = Y_hat - Y
        total = (D * D).sum()
        return total / D.numel() if reduction == "mean" else total

    @staticmethod
    def setup_context(ctx, inputs, output):
        Y_hat, Y, reduction = inputs
        ctx.save_for_backward(Y_hat - Y)
        ctx.reduction = reduction

    @staticmethod
    def backward(ctx, g):
        (D,) = ctx.saved_tensors
        c = 2 / D.numel() if ctx.reduction == "mean" else 2
        return g * c * D, -g * c * D, None


class MSEReductionMissingTwo(MSEReduction):
    @staticmethod
    def backward(ctx, g):
        (D,) = ctx.saved_tensors
        c = 1 / D.numel() if ctx.reduction == "mean" else 1
        return g * c * D, -g * c * D, None


@dataclass(frozen=True)
class World:
    """A real-world-style target, the --input specs it is checked on, and what to expect.

    ``diagnoses`` has one code per tensor input; ``says`` are phrases the report must
    contain (to check that the right input, output or argument is named).
    """

    name: str
    function: Any
    specs: tuple[str, ...]
    verdict: str = "OK"
    diagnoses: tuple[str, ...] = ()
    factors: dict[int, float] = field(default_factory=dict)
    says: tuple[str, ...] = ()
    domain: str = "normal"

    def inputs(self, q: int = 4, n: int = 3, seed: int = 0) -> list[Any]:
        specs = [parse_spec(s.format(q=q, n=n, m=n + 1)) for s in self.specs]
        return make_inputs(specs, self.domain, seed)[0]


OK1, OK2, OK3 = ("ok",), ("ok",) * 2, ("ok",) * 3
WORLD = (
    # --- right: never called wrong --------------------------------------------------
    World("log", Log, ("{q},{n}:positive",), diagnoses=OK1),
    World("sqrt", Sqrt, ("{q},{n}:positive",), diagnoses=OK1),
    World("exp", Exp, ("{q},{n}",), diagnoses=OK1),
    World("exp with jvp", ExpWithJvp, ("{q},{n}",), diagnoses=OK1),
    World("power, int k", Power, ("{q},{n}", "int:3"), diagnoses=OK1),
    World("softmax", Softmax, ("{q},{n}", "int:1"), diagnoses=OK1),
    World("cross-entropy", CrossEntropy, ("{q},{n}", "{q}:index={n}"), diagnoses=OK2),
    World("two outputs", SinCos, ("{q},{n}",), diagnoses=OK1),
    World("max and index", MaxWithIndex, ("{q},{n}",), diagnoses=OK1),
    World("materialize off", SplitHalves, ("{q},{m}",), diagnoses=OK1),
    World("bool flag on", SoftmaxOrLog, ("{q},{n}", "bool:true"), diagnoses=OK1),
    World("bool flag off", SoftmaxOrLog, ("{q},{n}", "bool:false"), diagnoses=OK1),
    World("in place", ScaleInPlace, ("{q},{n}", "float:2.5"), diagnoses=OK1),
    World("needs_input_grad", MulNeeds, ("{q},{n}", "{q},{n}"), diagnoses=OK2),
    World("saved_variables", MatmulSavedVariables, ("{q},{n}", "{n},{m}"), diagnoses=OK2),
    World("attribute on ctx", SumRows, ("{q},{n}",), diagnoses=OK1),
    World("ctx.output", SigmoidOutputOnCtx, ("{q},{n}",), diagnoses=OK1),
    World("huber", Huber, ("{q},{n}", "{q},{n}", "float:0.5"), diagnoses=OK2),
    World("bce", BinaryCrossEntropy, ("{q},{n}:prob", "{q},{n}:prob"), diagnoses=OK2),
    # std comes from setup_context, outside any graph: double backward fails, rightly
    World(
        "standardize", Standardize, ("{q},{m}",), diagnoses=OK1, says=("gradgradcheck): failed",)
    ),
    World("cumsum", Cumsum, ("{q},{n}", "int:0"), diagnoses=OK1),
    World("bias None", LinearOptionalBias, ("{q},{n}", "{n},{m}", "none"), diagnoses=OK2),
    World("mse reduction", MSEReduction, ("{q},{n}", "{q},{n}", "str:mean"), diagnoses=OK2),
    World("mse sum", MSEReduction, ("{q},{n}", "{q},{n}", "str:sum"), diagnoses=OK2),
    # right, on inputs partly outside the domain: checked where the forward is defined
    World("log, negatives", Log, ("{q},{n}",), diagnoses=OK1, says=("undefined at the other",)),
    World("sqrt, negatives", Sqrt, ("{q},{n}",), diagnoses=OK1, says=("undefined at the other",)),
    # --- wrong: named, with the right input and kind -------------------------------
    World("log sign", LogSignFlipped, ("4,3:positive",), "WRONG", ("sign-flipped",), {0: -1.0}),
    World(
        "log sign, negatives",
        LogSignFlipped,
        ("4,3",),
        "WRONG",
        ("sign-flipped",),
        {0: -1.0},
        says=("undefined at",),
    ),
    World(
        "sqrt missing 1/2",
        SqrtMissingHalf,
        ("4,3:positive",),
        "WRONG",
        ("scaled",),
        {0: 2.0},
        says=("analytic ≈ 2 × numeric", "a factor 2 often comes from a square"),
    ),
    World(
        "power missing k",
        PowerMissingK,
        ("4,3", "int:3"),
        "WRONG",
        ("scaled",),
        {0: 1 / 3},
        says=("1/3 (with 3 = input 1 (k))", "leave out input 1 (k) as a factor"),
    ),
    World("power off by one", PowerOffByOne, ("4,3:positive", "int:3"), "WRONG", ("mismatch",)),
    World("softmax diagonal", SoftmaxDiagonalOnly, ("4,3", "int:1"), "WRONG", ("mismatch",)),
    World(
        "bool flag, log branch", SoftmaxOrLogWrongLog, ("4,3", "bool:true"), "WRONG", ("mismatch",)
    ),
    World(
        "cross-entropy no mean",
        CrossEntropyNoMean,
        ("5,3", "5:index=3"),
        "WRONG",
        ("scaled", "ok"),
        {0: 5.0},
        says=("5 (with 5 = the size of axis 0 of input 0 (Z))",),
    ),
    World(
        "cross-entropy ignores g",
        CrossEntropyIgnoresG,
        ("5,3", "5:index=3"),
        "WRONG",
        ("ignores-grad-output", "ok"),
    ),
    World(
        "two outputs, second forgotten",
        SinCosForgetsCos,
        ("4,3",),
        "WRONG",
        ("missing",),
        says=("through output 1 (of 2)", "through the other outputs it is right"),
    ),
    World(
        "two outputs, second sign",
        SinCosCosSign,
        ("4,3",),
        "WRONG",
        ("sign-flipped",),
        {0: -1.0},
        says=("through output 1 (of 2)",),
    ),
    World(
        "in place forgets c",
        ScaleInPlaceForgetsC,
        ("4,3", "float:2.5"),
        "WRONG",
        ("scaled",),
        {0: 0.4},
        says=("with 2.5 = input 1 (c)",),
    ),
    World(
        "needs_input_grad wrong index",
        MulNeedsWrongIndex,
        ("4,3", "4,3"),
        "WRONG",
        ("ok", "missing"),
        says=("with only input 1 (b) requiring grad", "ctx.needs_input_grad"),
    ),
    World(
        "sum not expanded",
        SumRowsNotExpanded,
        ("4,3",),
        "WRONG",
        ("wrong-shape",),
        says=("G.expand(4, 3)",),
    ),
    World("standardize no var term", StandardizeNoVarTerm, ("4,5",), "WRONG", ("mismatch",)),
    World("cumsum not reversed", CumsumNotReversed, ("4,3", "int:1"), "WRONG", ("mismatch",)),
    # the gradients are right, so the verdict is OK; the forward-mode line says failed
    World("jvp wrong", ExpJvpWrong, ("4,3",), "OK", OK1, says=("forward mode", "failed")),
    World(
        "mse missing 2, with reduction",
        MSEReductionMissingTwo,
        ("4,3", "4,3", "str:mean"),
        "WRONG",
        ("scaled", "scaled"),
        {0: 0.5, 1: 0.5},
        says=("2 from the square",),
    ),
    # --- undefined: the forward has no value at these inputs -----------------------
    World(
        "log-sum, negatives",
        LogSum,
        ("4,3",),
        "UNDEFINED",
        ("undefined",),
        says=("the forward is undefined at these inputs",),
    ),
)
