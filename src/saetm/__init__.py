"""saetm: topic modelling with sparse autoencoders (SAE-TM, Girrbach & Akata, ICML 2026)."""

from saetm._version import __version__, FORMAT_VERSION
from saetm.errors import SaetmError

__all__ = ["__version__", "FORMAT_VERSION", "SaetmError", "SAETM", "SAETraining", "Words", "Clustering"]


def __getattr__(name):
    # Import the model lazily so that `import saetm` stays fast (torch is heavy).
    if name == "SAETM":
        from saetm.model import SAETM

        return SAETM
    if name in ("SAETraining", "Words", "Clustering"):  # the components of its settings
        from saetm import components

        return getattr(components, name)
    raise AttributeError(name)
