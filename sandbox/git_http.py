"""Smart HTTP git through `git http-backend`, run as a CGI program per request.

`/{owner}/{repo}.git/...` (GitHub) and `/{org}/{project}/_git/{repo}/...` (Azure DevOps) both map onto the
bare repositories under the sandbox root. Only the smart protocol's three endpoints are served. After a
push the forge re-reads the branches, which moves pull request heads and wakes Flux and auto-merge; the
repository's pre-receive hook enforces branch protection on the push itself.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass
from pathlib import Path

from sandbox.forge import Forge, ForgeError, Repository

GITHUB_PATH = re.compile(
    r"/(?P<owner>[^/]+)/(?P<name>[^/]+?)\.git/(?P<rest>info/refs|git-upload-pack|git-receive-pack)"
)
AZURE_PATH = re.compile(
    r"/(?P<owner>[^/]+)/(?P<project>[^/]+)/_git/(?P<name>[^/]+?)(?:\.git)?/(?P<rest>info/refs|git-upload-pack|git-receive-pack)"
)
ROUTE_GITHUB = "/{owner}/{repo}.git/{service}"
ROUTE_AZURE = "/{organization}/{project}/_git/{repositoryId}/{service}"


@dataclass(frozen=True)
class GitTarget:
    repo: Repository
    project_root: Path
    path_info: str
    route: str

    @property
    def is_push(self) -> bool:
        return self.path_info.endswith("/git-receive-pack")


def is_git_path(path: str) -> bool:
    return GITHUB_PATH.fullmatch(path) is not None or AZURE_PATH.fullmatch(path) is not None


def target(forge: Forge, path: str) -> GitTarget:
    """The repository a git URL names; ForgeError("not_found") when there is none."""
    found = AZURE_PATH.fullmatch(path)
    if found:
        repo = forge.find_repo("azure", found["owner"], found["name"], found["project"])
        info = f"/{repo.owner.lower()}/{str(repo.project).lower()}/{repo.name.lower()}.git/{found['rest']}"
        return GitTarget(repo, forge.root / "azure", info, ROUTE_AZURE)
    found = GITHUB_PATH.fullmatch(path)
    if found is None:
        raise ForgeError("not_found", "Repository not found.")
    repo = forge.repo("github", found["owner"], found["name"])
    return GitTarget(
        repo,
        forge.root / "github",
        f"/{repo.owner.lower()}/{repo.name.lower()}.git/{found['rest']}",
        ROUTE_GITHUB,
    )


async def run_backend(
    git: GitTarget, method: str, query: str, headers: dict[str, str], body: bytes, user: str
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Run `git http-backend` for one request; (status, headers, body) from its CGI output."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108 - only read for git's global config
        "GIT_PROJECT_ROOT": str(git.project_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": git.path_info,
        "REQUEST_METHOD": method,
        "QUERY_STRING": query,
        "CONTENT_TYPE": headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_USER": user,
        "REMOTE_ADDR": "127.0.0.1",
    }
    if "git-protocol" in headers:
        env["HTTP_GIT_PROTOCOL"] = headers["git-protocol"]
    if "content-encoding" in headers:
        env["HTTP_CONTENT_ENCODING"] = headers["content-encoding"]
    process = await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, _ = await process.communicate(body)
    head, sep, payload = out.partition(b"\r\n\r\n")
    if not sep:
        head, _, payload = out.partition(b"\n\n")
    status, response_headers = 200, []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            response_headers.append((name.strip(), value.strip()))
    return status, response_headers, payload
