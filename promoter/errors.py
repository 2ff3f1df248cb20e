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


class ProviderError(PromoterError):
    """The Git forge (GitHub, Azure DevOps) refused or failed a request."""


class ProviderAuthError(ProviderError):
    """401 or 403: the token is wrong or lacks a permission; retrying will not help."""


class ProviderNotFoundError(ProviderError):
    """404: the repository, PR or commit does not exist, or the token cannot see it."""


class ProviderRateLimitError(ProviderError):
    """The forge asks us to wait longer than we are allowed to."""
