"""Pick the provider from the GitOps repository's remote URL, in one place (as gitops-promotion does).

- `github.com` (https or ssh) -> GitHub at api.github.com;
- any other host with `--provider github` -> GitHub Enterprise Server (`https://HOST/api/v3`);
- `dev.azure.com/{org}/{project}/_git/{repo}`, `{org}.visualstudio.com/{project}/_git/{repo}`,
  `ssh.dev.azure.com:v3/{org}/{project}/{repo}` -> Azure DevOps Services;
- `HOST/{collection}/{project}/_git/{repo}` -> Azure DevOps Server.
The sandbox is reached the same way, by its URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from promoter.errors import InvalidInputError
from promoter.providers.azure_devops import AzureDevOpsProvider
from promoter.providers.base import GitProvider
from promoter.providers.github import GitHubProvider

ProviderKind = Literal["github", "azdo"]
_NAME = re.compile(r"[A-Za-z0-9._ -]{1,100}")
_SCP = re.compile(r"(?:[^@/]+@)?(?P<host>[^@:/]+):(?P<path>(?!/).+)")
_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)[^/?#]*@")


@dataclass(frozen=True)
class Remote:
    """Where the repository lives and how to reach its API. `clone_url` is always http(s)."""

    kind: ProviderKind
    clone_url: str
    owner: str  # GitHub owner, or Azure DevOps collection URL
    project: str  # Azure DevOps project ("" on GitHub)
    name: str
    api_url: str
    graphql_url: str = ""


def parse_remote(url: str, provider: ProviderKind | None = None) -> Remote:
    """Read a remote URL; `InvalidInputError` says what is unsupported and what to pass instead."""
    clean = _USERINFO.sub(r"\g<scheme>", url.strip())  # whatever the scheme: no secret in any message
    scheme, host, path = _split(clean)
    parts = [unquote(part) for part in path.split("/") if part]
    azure = (
        "_git" in parts
        or host in ("dev.azure.com", "ssh.dev.azure.com")
        or host.endswith(".visualstudio.com")
    )
    if provider == "github" and azure:
        raise InvalidInputError(
            f"{clean} is an Azure DevOps URL; use --provider azdo (or leave --provider out)"
        )
    if azure or provider == "azdo":
        return _azure(clean, scheme, host, parts)
    if provider == "github" or host == "github.com":
        return _github(clean, scheme, host, parts)
    raise InvalidInputError(
        f"cannot tell which forge serves {clean}: pass --provider github (GitHub Enterprise) or --provider azdo"
    )


def _split(url: str) -> tuple[str, str, str]:
    if "://" not in url:
        match = _SCP.fullmatch(url)
        if not match:
            raise InvalidInputError(
                f"{url!r} is not a git remote URL (expected https://... or git@host:path)"
            )
        return "https", match["host"].lower(), match["path"]
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        raise InvalidInputError(f"{url!r} is not a valid URL: check its host and port") from None
    if parts.scheme not in ("http", "https", "ssh") or not parts.hostname:
        raise InvalidInputError(f"{url!r}: unsupported remote URL scheme {parts.scheme!r}; use https or ssh")
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host  # an IPv6 literal keeps its brackets
    if parts.scheme == "ssh":
        return "https", host, parts.path
    return parts.scheme, host + port, parts.path


def _checked(*names: str) -> None:
    for name in names:
        if not _NAME.fullmatch(name) or name in (".", ".."):
            raise InvalidInputError(f"unsupported name {name!r} in the remote URL")


def _github(url: str, scheme: str, host: str, parts: list[str]) -> Remote:
    if len(parts) != 2:
        raise InvalidInputError(
            f"{url}: expected a GitHub repository URL such as https://github.com/OWNER/REPO.git"
        )
    owner, name = parts[0], parts[1].removesuffix(".git")
    _checked(owner, name)
    if host == "github.com":
        api, graphql = "https://api.github.com", "https://api.github.com/graphql"
    else:
        api, graphql = f"{scheme}://{host}/api/v3", f"{scheme}://{host}/api/graphql"
    return Remote("github", f"{scheme}://{host}/{owner}/{name}.git", owner, "", name, api, graphql)


def _azure(url: str, scheme: str, host: str, parts: list[str]) -> Remote:
    if host == "ssh.dev.azure.com" or host.startswith("vs-ssh."):
        if len(parts) != 4 or parts[0] != "v3":
            raise InvalidInputError(f"{url}: expected git@ssh.dev.azure.com:v3/ORG/PROJECT/REPO")
        org, project, name = parts[1:]
        host = "dev.azure.com" if host == "ssh.dev.azure.com" else f"{org}.visualstudio.com"
        collection = f"https://{host}/{org}" if host == "dev.azure.com" else f"https://{host}"
    else:
        if "_git" not in parts or parts.index("_git") < 1 or len(parts) != parts.index("_git") + 2:
            raise InvalidInputError(
                f"{url}: expected an Azure DevOps URL such as https://dev.azure.com/ORG/PROJECT/_git/REPO"
            )
        at = parts.index("_git")
        name, project, prefix = parts[at + 1], parts[at - 1], parts[: at - 1]
        if host == "dev.azure.com" and len(prefix) != 1:
            raise InvalidInputError(f"{url}: expected https://dev.azure.com/ORG/PROJECT/_git/REPO")
        collection = f"{scheme}://{host}" + "".join(f"/{part}" for part in prefix)
    _checked(project, name)
    clone = f"{collection}/{quote(project)}/_git/{quote(name)}"
    return Remote(
        "azdo",
        clone,
        collection,
        project,
        name,
        f"{collection}/{quote(project)}/_apis/git/repositories/{quote(name)}",
    )


def provider_for(remote: Remote, token: str, **client: Any) -> GitProvider:
    """The provider for `remote`; `client` passes HTTP options (timeouts, retries) through."""
    if not token:
        raise InvalidInputError("no token: pass --token or set PROMOTER_TOKEN")
    if remote.kind == "github":
        return GitHubProvider(remote.api_url, remote.graphql_url, remote.owner, remote.name, token, **client)
    return AzureDevOpsProvider(remote.owner, remote.project, remote.name, token, **client)
