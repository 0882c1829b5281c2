"""``SpecInspector``: an env's (or a spec's) tree of specs, a random sample, and check_env_specs."""
from __future__ import annotations

from typing import Iterable

import torch
import traitlets
from tensordict import TensorDictBase

from ..envs import EnvBase, check_env_specs
from ..specs import Composite, Spec
from .base import Inspector

__all__ = ["SpecInspector"]

#: most characters of a sampled value's repr sent to the view
MAX_VALUE_CHARS = 400

_GROUPS = ("observation_spec", "action_spec", "reward_spec", "done_spec", "state_spec")


def _key_name(key) -> str:
    return ".".join(map(str, key)) if isinstance(key, tuple) else str(key)


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


def spec_node(key: str, spec) -> dict:
    """The JSON description of one spec (recursively for a Composite), as the view reads it."""
    node = {"key": key, "kind": type(spec).__name__, "shape": list(spec.shape), "device": str(spec.device)}
    if isinstance(spec, Composite):
        node["children"] = [spec_node(str(k), spec[k]) for k in spec.keys()]
        return node
    node["dtype"] = _dtype_name(spec.dtype)
    extra = spec._extra_repr() if hasattr(spec, "_extra_repr") else ""
    node["detail"] = extra
    return node


def _value_text(value) -> str:
    if isinstance(value, torch.Tensor):
        with torch.no_grad():
            text = repr(value.detach().cpu()).replace("\n", " ")
        text = " ".join(text.split())
    else:
        text = repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _sample_rows(group: str, spec) -> list[dict]:
    value = spec.rand()
    if isinstance(value, TensorDictBase):
        items = [(_key_name(k), v) for k, v in value.items(True, True)]
    else:
        items = [("", value)]
    return [
        {"group": group, "key": key, "shape": list(v.shape), "dtype": _dtype_name(v.dtype), "value": _value_text(v)}
        for key, v in items
    ]


class SpecInspector(Inspector):
    """Look at an env's specs: the tree, a random sample, and a spec check shown side by side.

    Given an env, the tree holds its observation, action, reward, done (and state) specs, the
    "Check specs" button runs :func:`rlbench.envs.check_env_specs` and lists each mismatch as
    key / problem / expected / got / fix. Given a single spec, the tree is that spec and there is
    nothing to check. "Sample" draws ``spec.rand()`` in the kernel and shows the values.

    Args:
        obj: an :class:`rlbench.envs.EnvBase`, or a ``Spec``/``Composite``.
        title: defaults to the env's class (and gym id) or the spec's kind.

    Synced fields: ``title``, ``groups`` (list of ``{name, node}`` trees), ``can_check``,
    ``sample`` and ``check`` results (see ``widgets/README.md``).

    Example:
        >>> from rlbench.envs import CartPoleEnv
        >>> w = SpecInspector(CartPoleEnv())
        >>> [g["name"] for g in w.groups]
        ['observation_spec', 'action_spec', 'reward_spec', 'done_spec', 'state_spec']
        >>> w.draw_sample()["status"]
        'ok'
        >>> w.run_check()["status"]
        'ok'
    """

    _view = "spec_inspector"

    groups = traitlets.List().tag(sync=True)
    can_check = traitlets.Bool(False).tag(sync=True)
    sample = traitlets.Dict({"status": "none"}).tag(sync=True)
    check = traitlets.Dict({"status": "idle"}).tag(sync=True)
    batch_size = traitlets.List().tag(sync=True)

    def __init__(self, obj, title: str | None = None, **kwargs):
        if isinstance(obj, EnvBase):
            env, specs = obj, {}
            for name in _GROUPS:
                spec = getattr(obj, name, None)
                if spec is None or (name == "state_spec" and isinstance(spec, Composite) and not len(spec)):
                    continue
                specs[name] = spec
            default_title = type(obj).__name__
            env_name = getattr(obj, "env_name", None)
            if env_name:
                default_title += f" · {env_name}"
            batch = list(obj.batch_size)
        elif isinstance(obj, Spec):
            env, specs, default_title, batch = None, {"spec": obj}, type(obj).__name__, []
        else:
            raise TypeError(
                f"SpecInspector: expected an rlbench env (EnvBase) or a spec (Spec/Composite), "
                f"got {type(obj).__module__}.{type(obj).__qualname__}"
            )
        self._env = env
        self._specs = specs
        super().__init__(
            title=default_title if title is None else title,
            groups=[{"name": name, "node": spec_node(name, spec)} for name, spec in specs.items()],
            can_check=env is not None,
            batch_size=batch,
            **kwargs,
        )
        self.on_msg(self._on_front_end_msg)

    # ------------------------------------------------------------------ actions (buttons call these)
    def draw_sample(self) -> dict:
        """Draw ``rand()`` of every spec shown and publish it to the view; returns the result."""
        try:
            rows = [row for name, spec in self._specs.items() for row in _sample_rows(name, spec)]
            result = {"status": "ok", "rows": rows}
        except Exception as err:  # shown in the view, never a traceback
            result = {"status": "error", "message": f"{type(err).__name__}: {err}"}
        self.sample = result
        return result

    def run_check(self, steps: int = 3) -> dict:
        """Run ``check_env_specs(env, raise_error=False)`` and publish each mismatch; returns the result."""
        if self._env is None:
            result = {"status": "unavailable", "message": "check_env_specs needs an env, not a single spec"}
        else:
            self.check = {"status": "running"}
            try:
                found = check_env_specs(self._env, steps=steps, raise_error=False)
            except Exception as err:  # an env that crashes is a finding too, shown as text
                result = {"status": "error", "message": f"{type(err).__name__}: {err}"}
            else:
                result = {
                    "status": "mismatch" if found else "ok",
                    "mismatches": [
                        {"key": _key_name(m.key), "problem": m.problem, "expected": m.expected, "got": m.got,
                         "hint": m.hint}
                        for m in found
                    ],
                    "steps": steps,
                }
        self.check = result
        return result

    def _on_front_end_msg(self, _widget, content, _buffers) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "sample":
            self.draw_sample()
        elif kind == "check":
            self.run_check()

    # ------------------------------------------------------------------ fallbacks
    def _summary_rows(self) -> Iterable[tuple[str, str]]:
        rows = []
        for name, spec in self._specs.items():
            if isinstance(spec, Composite):
                for key, leaf in spec.items(True, True):
                    rows.append((f"{name}[{_key_name(key)}]", _leaf_text(leaf)))
            else:
                rows.append((name, _leaf_text(spec)))
        return rows

    def __repr__(self) -> str:
        return f"SpecInspector(title={self.title!r}, groups={[g['name'] for g in self.groups]})"


def _leaf_text(spec) -> str:
    text = f"{type(spec).__name__} shape={tuple(spec.shape)} dtype={_dtype_name(spec.dtype)}"
    extra = spec._extra_repr() if hasattr(spec, "_extra_repr") else ""
    return f"{text} {extra}".strip()
