"""One exception hierarchy, so callers can catch `PromoterError` and show its message as is.

Every message says what was wrong and what to do about it; none carries a secret.
"""


class PromoterError(Exception):
    """Base of every error the promoter raises on purpose."""


class ConfigError(PromoterError):
    """`gitops-promotion.yaml` is missing, malformed or inconsistent."""


class InvalidInputError(PromoterError):
    """A group, app, tag, digest or environment given by a caller breaks its grammar."""


class ManifestError(PromoterError):
    """Manifests could not be rewritten: no marker, a marker on a non-scalar, invalid YAML afterwards."""


class WorkspaceError(PromoterError):
    """A git operation on the GitOps repository failed."""


class PushRejectedError(WorkspaceError):
    """The remote branch moved underneath us: the edit must be re-applied on the new base."""
