"""The rules between Config fields: options that are each valid but do not go together, checked
by :func:`wdlib.config.make_config` after each field's own check."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError
from .field_checks import check_optimizer_args, check_scale
from .model import BUILTIN_MODELS, parameter_names
from .optim import OPTIMIZER_ARGS
from .user_checks import user_parameters


def check_lambd(c: dict[str, Any]) -> None:
    """The combinations λ takes part in."""
    if c["mode"] == "concise" and c["lambd"] != 0:
        raise ConfigError("lambd", c["lambd"], "0 with mode='concise'", "use wd=... for weight decay")


def check_combination(c: dict[str, Any], defaults: Any) -> None:
    """Options that are each valid but do not go together (``defaults``: the Config of defaults)."""

    def refuse_unless(name: str, condition: bool, accepted: str, hint: str = "") -> None:
        if not condition:
            raise ConfigError(name, c[name], accepted, hint)

    if c["rng"] == "native":
        refuse_unless("dtype", c["dtype"] == "float32", "'float32' with rng='native' (the books ran float32)")
        for name in ("model", "optimizer", "dataset"):
            refuse_unless(name, c[name] == getattr(defaults, name),
                          f"{getattr(defaults, name)!r} with rng='native' (the books' own recipe)")
    if c["model"] == "linear":
        refuse_unless("hidden", not c["hidden"], "() with model='linear'", "use model='mlp'")
    elif c["model"] not in BUILTIN_MODELS:
        refuse_unless("hidden", not c["hidden"], f"() with model={c['model']!r} (a model of your own "
                      "holds its own settings)")
        refuse_unless("mode", c["mode"] == "scratch", f"'scratch' with model={c['model']!r}: the "
                      "frameworks' own (concise) layers are the built-in models'")
        user_parameters(c["model"], c["num_inputs"])  # its init returns named float arrays
    if c["engine"] == "fused":
        from types import SimpleNamespace

        from .vectorized import supports

        refuse_unless("engine", supports(SimpleNamespace(**c)), "'auto' or 'eager': no fused path for "
                      "this configuration (it runs only model='linear', penalty='l2', optimizer='sgd' "
                      "without wd, mode='scratch', rng='numpy', no penalize=...)")
    check_scale(c)
    check_optimizer_args(c["optimizer"], dict(c["optimizer_args"]), OPTIMIZER_ARGS[c["optimizer"]])
    refuse_unless("l1_ratio", c["penalty"] == "elastic_net" or c["l1_ratio"] == defaults.l1_ratio,
                  f"{defaults.l1_ratio} unless penalty='elastic_net'")
    if c["penalize"]:
        names = parameter_names(c)
        unknown = [k for k in c["penalize"] if k not in names]
        refuse_unless("penalize", not unknown, f"names of the model's parameters: {', '.join(names)}")
        refuse_unless("decay_bias", not c["decay_bias"], "False with penalize=... (name the biases there)")
    if c["dataset"] != "synthetic":
        for name in ("true_w", "true_b", "noise"):
            refuse_unless(name, c[name] == getattr(defaults, name),
                          f"{getattr(defaults, name)} (it describes the synthetic data only)")
        refuse_unless("data_fingerprint", bool(c["data_fingerprint"]), "set by wdlib",
                      "pass your arrays as wdlib.train(..., data=(X, y))")
    else:
        refuse_unless("data_fingerprint", not c["data_fingerprint"], "'' with dataset='synthetic'")
    check_lambd(c)
    if c["mode"] == "concise":
        refuse_unless("penalty", c["penalty"] == "l2", "'l2' with mode='concise' (optimizer weight decay)")
        # Each framework's own optimizers (wdlib.semantics.SPELLINGS); another backend's: SGD only.
        from .semantics import SPELLINGS, check_concise

        if c["backend"] in {s.backend for s in SPELLINGS}:
            check_concise(c)
        else:
            for name in ("model", "optimizer", "decay"):
                refuse_unless(name, c[name] == getattr(defaults, name),
                              f"{getattr(defaults, name)!r} with mode='concise' on backend {c['backend']!r}",
                              "use mode='scratch'")

