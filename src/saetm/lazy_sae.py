"""The SAE of a loaded model, built on first use.

Loading reads and checks the SAE's files (:func:`saetm.sae.config.read_sae`, no torch);
the network is built from those arrays only when something encodes with it (``transform``),
because building it imports torch, which listing or regrouping topics does not need.
"""

from __future__ import annotations


class LazySAE:
    """Mixin for ``SAETM``: ``sae_`` is the fitted SAE, built from the saved arrays on first access."""

    @property
    def sae_(self):
        state = self.__dict__
        if "_sae" not in state:
            if state.get("_saved_sae") is None:
                raise AttributeError("sae_")
            from saetm.sae.persist import build_saved

            state["_sae"] = build_saved(state.pop("_saved_sae"))  # the network now holds those arrays
        return state["_sae"]

    @sae_.setter
    def sae_(self, sae) -> None:
        self.__dict__.pop("_saved_sae", None)
        self.__dict__["_sae"] = sae

    def _defer_sae(self, saved) -> None:
        """Keep ``saved`` (a :class:`saetm.sae.config.SavedSAE`) to build ``sae_`` from later."""
        self.__dict__.pop("_sae", None)
        self.__dict__["_saved_sae"] = saved
