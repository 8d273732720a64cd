"""scikit-learn's estimator protocol (``get_params``, ``set_params``, ``repr``) without importing it.

``SAETM`` and its components behave like scikit-learn estimators: ``get_params(deep=True)``
lists a component's fields as ``words__ranking``, ``set_params`` takes those keys,
``sklearn.base.clone`` copies a model, and ``repr`` shows the settings that differ from
their defaults. They do not inherit ``sklearn.base.BaseEstimator`` because importing it
takes 1–2 s (it pulls in SciPy's statistics and pandas), which the everyday commands
(``saetm retopic``, ``saetm transform``) would pay for nothing.
"""

from __future__ import annotations

import inspect

from saetm.errors import SaetmError


class Estimator:
    """Settings are the constructor's named arguments, stored under their own names."""

    @classmethod
    def _param_names(cls) -> list[str]:
        skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        params = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in params if p.name != "self" and p.kind not in skip)

    def get_params(self, deep: bool = True) -> dict:
        """The settings by name; with ``deep``, also each component's as ``component__field``."""
        out = {}
        for name in self._param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                out.update((f"{name}__{k}", v) for k, v in value.get_params(deep=True).items())
            out[name] = value
        return out

    def set_params(self, **params):
        """Change settings by name (``component__field`` for a component's); returns self."""
        own = self.get_params(deep=False)
        nested: dict[str, dict] = {}
        for key, value in params.items():
            name, _, field = key.partition("__")
            if name not in own:
                raise SaetmError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid: {', '.join(own)}")
            if field:
                nested.setdefault(name, {})[field] = value
            else:
                setattr(self, name, value)
                own[name] = value
        for name, fields in nested.items():
            if not hasattr(own[name], "set_params"):
                raise SaetmError(f"{name}={own[name]!r} has no settings {', '.join(fields)}")
            own[name].set_params(**fields)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{name}={value!r}" for name, value in self.get_params(deep=False).items()
                   if repr(value) != repr(defaults.get(name))]
        return f"{type(self).__name__}({', '.join(changed)})"
