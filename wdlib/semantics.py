"""What each framework's ``weight_decay`` really does: one definition per native spelling, from which
the table (:func:`decay_semantics`), the conversions (:func:`convert`), the choice of native optimizer
in ``mode="concise"`` and the equivalence tests (tests/test_decay_semantics.py) are all generated.

Each :class:`Spelling` says which core update (:func:`wdlib.optim.make_optimizer` with ``optimizer``
and ``decay``) it equals and how closely (``rtol`` of a whole float64 run; ``None``: not equal).
Coupled decay adds ``wd * p`` to the gradient (so it goes through momentum and Adam's 1/sqrt(v));
decoupled decay shrinks ``p`` by ``lr * wd`` outside the optimizer (AdamW); independent decay by ``wd``
(MXNet's ``adamw_update`` with ``eta=1``). For plain SGD all three are one update (independent with
``wd * lr``); with momentum or Adam coupled and decoupled are different updates, and no λ converts one
into the other.

Imports no framework: :mod:`wdlib.config` checks ``mode="concise"`` choices against :data:`SPELLINGS`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from .config import Config
    from .decay_table import DecayTable


@dataclass(frozen=True)
class Spelling:
    """One way users write weight decay, and the core update it is."""

    key: str  #: the name :func:`convert` takes, e.g. "torch.AdamW"
    framework: str
    code: str  #: as users write it
    argument: str
    default: float | None
    optimizer: str  #: the core optimizer it equals ("sgd", "momentum", "adam"; "any" for a loss penalty)
    decay: str  #: "coupled", "decoupled" or "independent"
    bias: str  #: how the bias is left out of the decay
    backend: str | None = None  #: the wdlib backend whose mode="concise" runs it
    factor: float = 1.0  #: core wd = factor * this spelling's argument
    rtol: float | None = 1e-12  #: a whole float64 run equals the core chain to this (tests check it)
    nesterov: bool = False
    unsupported: tuple[str, ...] = ()  #: core optimizer_args it cannot express (kept at their defaults)
    variant_of: str = ""  #: another spelling it equals bit for bit (not selected by a Config)
    note: str = ""

    @property
    def lr_scaled(self) -> str:
        return {"coupled": "yes (through the optimizer)", "decoupled": "yes",
                "independent": "no"}[self.decay]


_GROUPS = "param groups: weight_decay=0 for the bias"
_MASK = "mask={'w': True, 'b': False}"
_WD_MULT = "bias.wd_mult = 0"
_F32 = ("lr, wd, momentum, betas and 1/batch_size are float32 operator attributes: equal as stated when "
        "they are exactly representable (the tests' values), else ~6e-8 relative per step")
_MX_ADAM = ("eps is added before the bias correction (effective eps / sqrt(1 - b2^t)) and "
            "lr * sqrt(1 - b2^t) / (1 - b1^t) is rounded to float32 each step")


def _numpy_rows() -> list[Spelling]:
    rows = []
    for optimizer in ("sgd", "momentum", "adam"):
        for decay in ("coupled", "decoupled", "independent"):
            rows.append(Spelling(
                f"numpy.{optimizer}.{decay}", "NumPy (by hand)",
                f"PyTorch's {optimizer} update with {decay} decay, written out", "wd", 0.0, optimizer,
                decay, "the bias is not decayed", backend="numpy"))
    return rows


SPELLINGS: tuple[Spelling, ...] = (
    Spelling("torch.SGD", "PyTorch 2.13", "torch.optim.SGD(groups, lr, weight_decay=wd)", "weight_decay",
             0.0, "sgd", "coupled", _GROUPS, backend="torch"),
    Spelling("torch.SGD(momentum)", "PyTorch 2.13",
             "torch.optim.SGD(groups, lr, momentum, dampening, nesterov, weight_decay=wd)", "weight_decay",
             0.0, "momentum", "coupled", _GROUPS, backend="torch"),
    Spelling("torch.SGD(nesterov)", "PyTorch 2.13",
             "torch.optim.SGD(groups, lr, momentum, nesterov=True, weight_decay=wd)", "weight_decay",
             0.0, "momentum", "coupled", _GROUPS, backend="torch", nesterov=True),
    Spelling("torch.Adam", "PyTorch 2.13", "torch.optim.Adam(groups, lr, betas, eps, weight_decay=wd)",
             "weight_decay", 0.0, "adam", "coupled", _GROUPS, backend="torch",
             note="the L2 gradient, then divided by sqrt(v): not the decay of AdamW"),
    Spelling("torch.AdamW", "PyTorch 2.13", "torch.optim.AdamW(groups, lr, betas, eps, weight_decay=wd)",
             "weight_decay", 0.01, "adam", "decoupled", _GROUPS, backend="torch"),
    Spelling("torch.Adam(decoupled_weight_decay=True)", "PyTorch 2.13",
             "torch.optim.Adam(groups, lr, weight_decay=wd, decoupled_weight_decay=True)", "weight_decay",
             0.0, "adam", "decoupled", _GROUPS, backend="torch", variant_of="torch.AdamW"),
    Spelling("optax.sgd", "optax", "optax.chain(optax.add_decayed_weights(wd, mask), optax.sgd(lr))",
             "weight_decay", 0.0, "sgd", "coupled", _MASK, backend="jax"),
    Spelling("optax.sgd(momentum)", "optax",
             "optax.chain(optax.add_decayed_weights(wd, mask), optax.sgd(lr, momentum, nesterov))",
             "weight_decay", 0.0, "momentum", "coupled", _MASK, backend="jax", unsupported=("dampening",)),
    Spelling("optax.sgd(nesterov)", "optax",
             "optax.chain(optax.add_decayed_weights(wd, mask), optax.sgd(lr, momentum, nesterov=True))",
             "weight_decay", 0.0, "momentum", "coupled", _MASK, backend="jax", nesterov=True,
             unsupported=("dampening",)),
    Spelling("optax.adam", "optax",
             "optax.chain(optax.add_decayed_weights(wd, mask), optax.adam(lr, b1, b2, eps))",
             "weight_decay", 0.0, "adam", "coupled", _MASK, backend="jax"),
    Spelling("optax.adamw", "optax", "optax.adamw(lr, b1, b2, eps, weight_decay=wd, mask=mask)",
             "weight_decay", 1e-4, "adam", "decoupled", _MASK, backend="jax",
             note="the mask goes to adamw itself (a mask chained before it does not reach its decay)"),
    Spelling("gluon.sgd", "MXNet 1.9.1", "gluon.Trainer(params, 'sgd', {'learning_rate': lr, 'wd': wd})",
             "wd", 0.0, "sgd", "coupled", _WD_MULT, backend="mxnet", note=_F32),
    Spelling("gluon.sgd(momentum)", "MXNet 1.9.1",
             "gluon.Trainer(params, 'sgd', {'learning_rate': lr, 'momentum': m, 'wd': wd})", "wd", 0.0,
             "momentum", "coupled", _WD_MULT, backend="mxnet", unsupported=("dampening",),
             note="sgd_mom_update keeps lr inside the buffer (mom = m * mom - lr * g): equal for a "
                  "constant lr only; " + _F32),
    Spelling("gluon.nag", "MXNet 1.9.1",
             "gluon.Trainer(params, 'nag', {'learning_rate': lr, 'momentum': m, 'wd': wd})", "wd", 0.0,
             "momentum", "coupled", _WD_MULT, backend="mxnet", rtol=None, nesterov=True,
             unsupported=("dampening",),
             note="nag_mom_update leaves wd * w out of the look-ahead (w -= lr * (g + m * mom), mom "
                  "holding g + wd * w): equal to the core Nesterov chain for wd = 0 only"),
    Spelling("gluon.adam", "MXNet 1.9.1",
             "gluon.Trainer(params, 'adam', {'learning_rate': lr, 'beta1': b1, 'beta2': b2, 'wd': wd})",
             "wd", 0.0, "adam", "coupled", _WD_MULT, backend="mxnet", rtol=1e-6,
             note=_MX_ADAM + "; gradients clipped if clip_gradient is set (not set here)"),
    Spelling("mxnet.adamw_update(eta=lr)", "MXNet 1.9.1",
             "nd.contrib.adamw_update(w, g, m, v, rescale_grad, lr=sqrt(1-b2^t)/(1-b1^t), eta=lr, wd=wd)",
             "wd", 0.0, "adam", "decoupled", "wd=0 for the bias", backend="mxnet", rtol=1e-6,
             note="no AdamW optimizer class in 1.9.1; decay scaled by eta, here the lr; " + _MX_ADAM),
    Spelling("mxnet.adamw_update", "MXNet 1.9.1",
             "nd.contrib.adamw_update(w, g, m, v, rescale_grad, lr=lr*sqrt(1-b2^t)/(1-b1^t), eta=1, wd=wd)",
             "wd", 0.0, "adam", "independent", "wd=0 for the bias", backend="mxnet", rtol=1e-6,
             note="decay scaled by the schedule multiplier eta (1), not by lr; " + _MX_ADAM),
    *_numpy_rows(),
    Spelling("wdlib.lambd", "wdlib", "wdlib.train(lambd=λ): λ ||w||^2 / 2 in the loss", "lambd", 0.0,
             "any", "coupled", "decay_bias=False (default)", backend="numpy",
             note="a loss penalty is coupled decay for every optimizer; equal to coupled wd = λ when "
                  "batch_size divides n_train: the books sum the penalty over a minibatch's examples and "
                  "divide by batch_size, so a short last minibatch of m examples gets m / batch_size of λ "
                  "and coupled wd all of it"),
    Spelling("keras.L2", "Keras", "keras.regularizers.L2(l2): l2 * ||w||^2 in the loss (no 1/2)", "l2", 0.01,
             "any", "coupled", "no regularizer on the bias", backend="numpy", factor=2.0,
             note="l2 = λ / 2; checked with the same penalty in wdlib's scratch objective"),
)

BY_KEY = {s.key: s for s in SPELLINGS}


def native_spelling(backend: str, optimizer: str, decay: str, args: dict[str, Any]) -> Spelling | None:
    """The spelling ``mode="concise"`` runs for this backend/optimizer/decay, or None."""
    nesterov = bool(args.get("nesterov", False))
    for s in SPELLINGS:
        if (s.backend == backend and not s.variant_of and s.optimizer == optimizer and s.decay == decay
                and s.nesterov == (nesterov and optimizer == "momentum" and backend != "numpy")):
            return s
    return None


def check_concise(c: dict[str, Any]) -> None:
    """Refuse a ``mode="concise"`` optimizer/decay the backend's framework has no spelling of."""
    backend, optimizer, decay = c["backend"], c["optimizer"], c["decay"]
    if backend not in {s.backend for s in SPELLINGS}:
        return  # a user's backend: its concise_step decides
    args = dict(c["optimizer_args"])
    found = native_spelling(backend, optimizer, decay, args)
    if found is None:
        spelled = [f"optimizer={s.optimizer!r}, decay={s.decay!r} ({s.key})" for s in SPELLINGS
                   if s.backend == backend and not s.variant_of]
        field = "decay" if any(s.optimizer == optimizer for s in SPELLINGS if s.backend == backend) \
            else "optimizer"
        raise ConfigError(field, c[field], f"a native spelling of backend {backend!r} with mode='concise': "
                          + "; ".join(spelled),
                          "use mode='scratch' for the core chain of any optimizer and decay")
    for name in found.unsupported:
        if name in args and args[name] != 0:
            raise ConfigError(f"optimizer_args[{name!r}]", args[name],
                              f"0 with mode='concise' on {backend!r} ({found.key} has no {name})",
                              "use mode='scratch'")


def core_config(config: Config, loss_scale: float = 1.0) -> Config:
    """The ``mode="scratch"`` config whose core chain equals the concise run of ``config``, step for step.

    The concise run trains on the framework's loss, ``loss_scale`` times the scratch loss (2 for
    PyTorch's ``nn.MSELoss``): its gradients are ``s`` times the scratch ones, so SGD and momentum need
    ``lr * s`` and ``wd / s`` (coupled or decoupled), Adam (invariant to the gradient's scale but for
    eps) ``eps / s`` and, coupled, ``wd / s``.
    """
    from .optim import OPTIMIZER_ARGS

    s = loss_scale
    args = {**OPTIMIZER_ARGS[config.optimizer], **dict(config.optimizer_args)}
    lr, wd = config.lr, config.wd
    if config.optimizer == "adam":
        args["eps"] = args["eps"] / s
        wd = wd / s if config.decay == "coupled" else wd
    else:
        lr = lr * s
        wd = wd if config.decay == "independent" else wd / s
    return config.replace(mode="scratch", lr=lr, wd=wd, optimizer_args=args, engine="eager")


def convert(wd: float, *, from_: str, to: str, lr: float | None = None) -> float:
    """The argument of spelling ``to`` that gives the same update as ``wd`` in spelling ``from_``
    (keys of :data:`SPELLINGS`, e.g. ``convert(3, from_="torch.SGD", to="keras.L2") == 1.5``).

    Coupled ↔ coupled and decoupled ↔ decoupled are a change of constant; decoupled ↔ independent needs
    the (constant) ``lr``; coupled ↔ decoupled exists for plain SGD only, and is refused otherwise, as
    is a spelling that is not the core update (``equal`` "not compared" in :func:`decay_semantics`, e.g.
    ``gluon.nag``) unless ``wd`` is 0. ``wdlib.lambd`` equals coupled wd where ``batch_size`` divides
    the training set (its note says why).
    """
    from .field_checks import real

    wd = real()("wd", wd)  # a finite number >= 0, as Config.wd
    if lr is not None:
        lr = real(positive=True)("lr", lr)
    for name, key in (("from_", from_), ("to", to)):
        if key not in BY_KEY:
            raise ConfigError(name, key, "a spelling: " + ", ".join(BY_KEY))
    a, b = BY_KEY[from_], BY_KEY[to]
    for name, spelling in (("from_", a), ("to", b)):
        if spelling.rtol is None and a.key != b.key and wd != 0:
            raise ConfigError(name, spelling.key, "a spelling that is the core update (or wd=0)",
                              f"{spelling.key} is not: {spelling.note}")
    core = a.factor * wd
    if a.decay != b.decay:
        if "coupled" in (a.decay, b.decay) and not {a.optimizer, b.optimizer} <= {"sgd", "any"}:
            raise ConfigError("to", to, f"a spelling with {a.decay} decay like {from_!r}",
                              f"{from_} is {a.decay} {a.optimizer} and {to} is {b.decay} {b.optimizer}: with "
                              "momentum or Adam no λ makes coupled and decoupled decay the same update")
        if "independent" in (a.decay, b.decay):
            if lr is None:
                raise ConfigError("lr", None, "the (constant) learning rate",
                                  "independent decay (not scaled by lr) converts to scaled decay through lr")
            core = core / lr if a.decay == "independent" else core * lr
    return core / b.factor


def core_chain(s: Spelling) -> str:
    """The core chain of :func:`wdlib.optim.make_optimizer` that ``s`` equals, as text."""
    direction = {"sgd": [], "momentum": [f"trace(beta{', nesterov' if s.nesterov else ''})"],
                 "adam": ["scale_by_adam(b1, b2, eps)"], "any": ["<optimizer>"]}[s.optimizer]
    name = "wd" if s.argument in ("wd", "weight_decay") else s.argument
    wd = name if s.factor == 1 else f"{s.factor:g} * {name}"
    head = [f"add_decayed_weights({wd})"] if s.decay == "coupled" else []
    tail = [] if s.decay == "coupled" else [
        f"decoupled_decay({wd}, lr{', lr_scaled=False' if s.decay == 'independent' else ''})"]
    return "chain(" + ", ".join(["batch_mean", *head, *direction, "scale(-lr)", *tail]) + ")"


COLUMNS = ("key", "framework", "argument", "default", "decay", "lr_scaled", "bias", "core_chain", "equal",
           "same_as")


def decay_semantics() -> DecayTable:
    """The table of every spelling: framework, argument, coupled or not, scaled by lr or not, default,
    how the bias is left out, the core chain it equals (and how closely), and the conversions."""
    from .decay_table import DecayTable

    rows = []
    for s in SPELLINGS:
        same = []
        for other in SPELLINGS:
            if other.key == s.key or other.framework == s.framework:
                continue
            by_hand = other.backend == "numpy" and other.optimizer != "any"
            if by_hand or "independent" in (s.decay, other.decay):
                continue  # by hand, and conversions through lr, are left to convert()
            if s.optimizer not in (other.optimizer, "any") and other.optimizer != "any":
                continue
            momenta = s.optimizer == other.optimizer == "momentum"
            if None in (s.rtol, other.rtol) or (momenta and s.nesterov != other.nesterov):
                continue  # not shown equal to the core chain, or another momentum
            try:
                k = convert(1.0, from_=s.key, to=other.key)
            except ConfigError:
                continue
            same.append(f"{other.key} x{k:g}")
        equal = ("not compared" if s.rtol is None else f"= {s.variant_of} bit for bit" if s.variant_of
                 else f"float64 run, rtol {s.rtol:g}")
        rows.append({**asdict(s), "lr_scaled": s.lr_scaled, "core_chain": core_chain(s), "equal": equal,
                     "same_as": "; ".join(same)})
    return DecayTable(rows, COLUMNS)
