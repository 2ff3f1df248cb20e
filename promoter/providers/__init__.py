"""Git forges behind one Protocol: GitHub (and Enterprise Server) and Azure DevOps (Services and Server)."""

from promoter.providers.base import CommitStatus, GitProvider, MergeMethod, PullRequest
from promoter.providers.factory import Remote, parse_remote, provider_for

__all__ = [
    "CommitStatus",
    "GitProvider",
    "MergeMethod",
    "PullRequest",
    "Remote",
    "parse_remote",
    "provider_for",
]
