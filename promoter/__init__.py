"""promoter: carry container image releases through GitOps environments, gated on Flux health.

The core package knows GitOps repositories and Git forges; it never imports Prefect, so the CLI and the
tests can use it on their own.
"""

from promoter.errors import PromoterError

__all__ = ["PromoterError"]
__version__ = "0.1.0"
