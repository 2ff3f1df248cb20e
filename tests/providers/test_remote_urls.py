"""`parse_remote`: which forge serves a remote URL, where its API is, and how to clone it over http(s)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promoter.errors import InvalidInputError
from promoter.providers import parse_remote
from promoter.providers.factory import ProviderKind

GITHUB_API = ("https://api.github.com", "https://api.github.com/graphql")
DEV_AZURE = "https://dev.azure.com/acme"

# (url, --provider, kind, api_url, clone_url)
GOOD: list[tuple[str, ProviderKind | None, str, str, str]] = [
    # github.com, every way git spells it
    (
        "https://github.com/acme/gitops.git",
        None,
        "github",
        GITHUB_API[0],
        "https://github.com/acme/gitops.git",
    ),
    ("https://github.com/acme/gitops", None, "github", GITHUB_API[0], "https://github.com/acme/gitops.git"),
    ("https://github.com/acme/gitops/", None, "github", GITHUB_API[0], "https://github.com/acme/gitops.git"),
    (
        "https://GitHub.com/acme/gitops.git",
        None,
        "github",
        GITHUB_API[0],
        "https://github.com/acme/gitops.git",
    ),
    (
        "ssh://git@github.com/acme/gitops.git",
        None,
        "github",
        GITHUB_API[0],
        "https://github.com/acme/gitops.git",
    ),
    ("git@github.com:acme/gitops.git", None, "github", GITHUB_API[0], "https://github.com/acme/gitops.git"),
    (
        "git@github.com:acme/gitops.git",
        "github",
        "github",
        GITHUB_API[0],
        "https://github.com/acme/gitops.git",
    ),
    # GitHub Enterprise Server, named by --provider github
    (
        "https://ghe.example.com/acme/gitops.git",
        "github",
        "github",
        "https://ghe.example.com/api/v3",
        "https://ghe.example.com/acme/gitops.git",
    ),
    (
        "git@ghe.example.com:acme/gitops.git",
        "github",
        "github",
        "https://ghe.example.com/api/v3",
        "https://ghe.example.com/acme/gitops.git",
    ),
    (
        "https://ghe.example.com:8443/acme/gitops",
        "github",
        "github",
        "https://ghe.example.com:8443/api/v3",
        "https://ghe.example.com:8443/acme/gitops.git",
    ),
    # dev.azure.com, with the `org@` user Azure DevOps puts in its clone URLs, and spaces in names
    (
        "https://dev.azure.com/acme/gitops/_git/gitops",
        None,
        "azdo",
        f"{DEV_AZURE}/gitops/_apis/git/repositories/gitops",
        f"{DEV_AZURE}/gitops/_git/gitops",
    ),
    (
        "https://acme@dev.azure.com/acme/gitops/_git/gitops",
        None,
        "azdo",
        f"{DEV_AZURE}/gitops/_apis/git/repositories/gitops",
        f"{DEV_AZURE}/gitops/_git/gitops",
    ),
    (
        "https://dev.azure.com/acme/Platform%20Team/_git/gitops",
        None,
        "azdo",
        f"{DEV_AZURE}/Platform%20Team/_apis/git/repositories/gitops",
        f"{DEV_AZURE}/Platform%20Team/_git/gitops",
    ),
    (
        "https://dev.azure.com/acme/gitops/_git/gitops",
        "azdo",
        "azdo",
        f"{DEV_AZURE}/gitops/_apis/git/repositories/gitops",
        f"{DEV_AZURE}/gitops/_git/gitops",
    ),
    # {org}.visualstudio.com, the same service, with and without DefaultCollection
    (
        "https://acme.visualstudio.com/gitops/_git/gitops",
        None,
        "azdo",
        "https://acme.visualstudio.com/gitops/_apis/git/repositories/gitops",
        "https://acme.visualstudio.com/gitops/_git/gitops",
    ),
    (
        "https://acme.visualstudio.com/DefaultCollection/gitops/_git/gitops",
        None,
        "azdo",
        "https://acme.visualstudio.com/DefaultCollection/gitops/_apis/git/repositories/gitops",
        "https://acme.visualstudio.com/DefaultCollection/gitops/_git/gitops",
    ),
    # ssh.dev.azure.com (v3), both spellings, and the older vs-ssh host
    (
        "git@ssh.dev.azure.com:v3/acme/gitops/gitops",
        None,
        "azdo",
        f"{DEV_AZURE}/gitops/_apis/git/repositories/gitops",
        f"{DEV_AZURE}/gitops/_git/gitops",
    ),
    (
        "ssh://git@ssh.dev.azure.com/v3/acme/gitops/gitops",
        None,
        "azdo",
        f"{DEV_AZURE}/gitops/_apis/git/repositories/gitops",
        f"{DEV_AZURE}/gitops/_git/gitops",
    ),
    (
        "acme@vs-ssh.visualstudio.com:v3/acme/gitops/gitops",
        None,
        "azdo",
        "https://acme.visualstudio.com/gitops/_apis/git/repositories/gitops",
        "https://acme.visualstudio.com/gitops/_git/gitops",
    ),
    # Azure DevOps Server: a collection path (one or more segments) before the project
    (
        "https://tfs.example.com/tfs/DefaultCollection/gitops/_git/gitops",
        None,
        "azdo",
        "https://tfs.example.com/tfs/DefaultCollection/gitops/_apis/git/repositories/gitops",
        "https://tfs.example.com/tfs/DefaultCollection/gitops/_git/gitops",
    ),
    (
        "https://devops.example.com/Fabrikam/gitops/_git/gitops",
        None,
        "azdo",
        "https://devops.example.com/Fabrikam/gitops/_apis/git/repositories/gitops",
        "https://devops.example.com/Fabrikam/gitops/_git/gitops",
    ),
    # the sandbox, as both personalities
    (
        "http://127.0.0.1:8787/acme/gitops.git",
        "github",
        "github",
        "http://127.0.0.1:8787/api/v3",
        "http://127.0.0.1:8787/acme/gitops.git",
    ),
    (
        "http://127.0.0.1:8787/acme/gitops/_git/gitops",
        None,
        "azdo",
        "http://127.0.0.1:8787/acme/gitops/_apis/git/repositories/gitops",
        "http://127.0.0.1:8787/acme/gitops/_git/gitops",
    ),
    (
        "http://[::1]:8787/acme/gitops.git",
        "github",
        "github",
        "http://[::1]:8787/api/v3",
        "http://[::1]:8787/acme/gitops.git",
    ),
]


@pytest.mark.parametrize(("url", "provider", "kind", "api_url", "clone_url"), GOOD)
def test_remote_url_picks_the_forge_api_and_clone_url(
    url: str, provider: ProviderKind | None, kind: str, api_url: str, clone_url: str
) -> None:
    remote = parse_remote(url, provider)
    assert (remote.kind, remote.api_url, remote.clone_url) == (kind, api_url, clone_url)


def test_github_remotes_name_owner_repository_and_graphql() -> None:
    remote = parse_remote("git@github.com:acme/gitops.git")
    assert (remote.owner, remote.project, remote.name, remote.graphql_url) == (
        "acme",
        "",
        "gitops",
        GITHUB_API[1],
    )
    enterprise = parse_remote("https://ghe.example.com/acme/gitops.git", "github")
    assert enterprise.graphql_url == "https://ghe.example.com/api/graphql"


def test_azure_remotes_name_collection_project_and_repository_unquoted() -> None:
    remote = parse_remote("https://acme@dev.azure.com/acme/Platform%20Team/_git/gitops%20repo")
    assert (remote.owner, remote.project, remote.name) == (DEV_AZURE, "Platform Team", "gitops repo")
    server = parse_remote("https://tfs.example.com/tfs/DefaultCollection/gitops/_git/gitops")
    assert server.owner == "https://tfs.example.com/tfs/DefaultCollection"


# (url, --provider, words the message must contain)
BAD: list[tuple[str, ProviderKind | None, tuple[str, ...]]] = [
    ("https://gitlab.com/acme/gitops.git", None, ("cannot tell which forge", "--provider github")),
    ("git@bitbucket.org:acme/gitops.git", None, ("cannot tell which forge", "--provider azdo")),
    ("ftp://github.com/acme/gitops.git", None, ("unsupported remote URL scheme 'ftp'", "https or ssh")),
    ("file:///srv/git/gitops.git", None, ("unsupported remote URL scheme 'file'",)),
    ("https://github.com/acme", None, ("expected a GitHub repository URL", "OWNER/REPO")),
    ("https://github.com/acme/gitops/tree/main", None, ("expected a GitHub repository URL",)),
    ("https://dev.azure.com/acme/gitops/_git/", None, ("expected an Azure DevOps URL", "_git/REPO")),
    (
        "https://dev.azure.com/acme/_git/gitops",
        None,
        ("expected https://dev.azure.com/ORG/PROJECT/_git/REPO",),
    ),
    ("git@ssh.dev.azure.com:v3/acme/gitops", None, ("expected git@ssh.dev.azure.com:v3/ORG/PROJECT/REPO",)),
    (
        "https://dev.azure.com/acme/gitops/_git/gitops",
        "github",
        ("is an Azure DevOps URL", "--provider azdo"),
    ),
    ("https://acme.visualstudio.com/gitops/_git/gitops", "github", ("is an Azure DevOps URL",)),
    ("https://github.com/../gitops.git", None, ("unsupported name '..'",)),
    ("https://github.com/acme/%2e%2e", None, ("unsupported name '..'",)),
    ("https://github.com/acme/..%2F..%2Fetc", None, ("unsupported name",)),
    ("https://dev.azure.com/acme/%2E%2E/_git/gitops", None, ("unsupported name '..'",)),
    ("https://dev.azure.com/acme/gitops/_git/..%2Fsecrets", None, ("unsupported name",)),
    ("https://github.com/acme/git%00ops", None, ("unsupported name",)),
    ("", None, ("is not a git remote URL",)),
    ("not a url", None, ("is not a git remote URL",)),
    ("git@:acme/gitops", "github", ("is not a git remote URL",)),
    ("https://github.com:99999/acme/gitops", None, ("is not a valid URL", "port")),
    ("https://[github.com/acme/gitops", None, ("is not a valid URL",)),
]


@pytest.mark.parametrize(("url", "provider", "words"), BAD)
def test_unsupported_remote_urls_are_refused_with_a_helpful_message(
    url: str, provider: ProviderKind | None, words: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_remote(url, provider)
    for word in words:
        assert word in str(refused.value)


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        ("https://x-access-token:ghp_S3cretValue@github.com/acme/gitops.git", None),
        ("https://acme:azdoPatS3cretValue@dev.azure.com/acme/gitops/_git/gitops", None),
        ("https://build:S3cretValue@tfs.example.com/tfs/Coll/gitops/_git/gitops", None),
        ("http://promoter-bot:sandbox-S3cretValue@127.0.0.1:8787/acme/gitops.git", "github"),
    ],
)
def test_credentials_in_a_remote_url_never_reach_the_clone_url(
    url: str, provider: ProviderKind | None
) -> None:
    remote = parse_remote(url, provider)
    for field in (remote.clone_url, remote.api_url, remote.graphql_url, remote.owner):
        assert "S3cretValue" not in field and "@" not in field


@pytest.mark.parametrize(
    "url",
    [
        "ftp://user:S3cretValue@github.com/acme/gitops.git",
        "ssh://git:S3cretValue@github.com/acme",
        "https://user:S3cretValue@gitlab.com/acme/gitops.git",
        "https://user:S3cretValue@github.com:99999/acme/gitops.git",
        "https://user:S3cretValue@[github.com/acme/gitops.git",
    ],
)
def test_credentials_in_a_refused_remote_url_never_reach_the_message(url: str) -> None:
    with pytest.raises(InvalidInputError) as refused:
        parse_remote(url)
    assert "S3cretValue" not in str(refused.value)


@given(st.text(max_size=200), st.sampled_from([None, "github", "azdo"]))
def test_parse_remote_on_any_text_only_raises_invalid_input(text: str, provider: ProviderKind | None) -> None:
    try:
        remote = parse_remote(text, provider)
    except InvalidInputError as error:
        assert str(error)
    else:
        assert remote.kind in ("github", "azdo")
        assert remote.clone_url.startswith(("http://", "https://"))


SCHEMES = ["https://", "http://", "ssh://", "ftp://", ""]
PIECES = [
    *("github.com", "dev.azure.com", "ssh.dev.azure.com", "x.visualstudio.com", "[::1]", "[", "]", "@"),
    *(
        ":",
        ":8080",
        ":99999",
        "/",
        "acme",
        "_git",
        "gitops",
        ".git",
        "..",
        "%2F",
        "%20",
        "v3",
        "?",
        "#",
        "%",
        " ",
    ),
]
URLISH = st.tuples(
    st.sampled_from(SCHEMES),
    st.sampled_from(["", "git@", "user:pw@"]),
    st.lists(st.sampled_from(PIECES), max_size=12).map("".join),
)


@given(URLISH, st.sampled_from([None, "github", "azdo"]))
def test_parse_remote_on_url_shaped_text_only_raises_invalid_input(
    pieces: tuple[str, str, str], provider: ProviderKind | None
) -> None:
    """Arbitrary text rarely looks like a URL; these pieces reach the deeper branches of the parser."""
    scheme, userinfo, rest = pieces
    try:
        remote = parse_remote(scheme + userinfo + rest, provider)
    except InvalidInputError as error:
        if scheme:
            assert "pw@" not in str(error)
    else:
        assert "pw@" not in remote.clone_url
        assert ".." not in (remote.owner, remote.project, remote.name)
        assert remote.clone_url.startswith(("http://", "https://"))
