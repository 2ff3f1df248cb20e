"""A Flux emulator: reports each environment's health on main as Flux's controllers do.

Each behaviour follows a named source (docs/sandbox.md, "Flux emulator", lists them with links):

- Which Kustomizations: every `<group>/<env>/` folder of an environment in `gitops-promotion.yaml` is one
  Kustomization `<group>-<env>` (the gitops-promotion convention), on every emulated cluster.
- When: each cluster's GitRepository fetches main's head every `flux.poll` seconds (0: a Receiver
  fetches on every push). Commits that land between two fetches are never seen, so never reported. A new
  revision enqueues a reconcile of every Kustomization of the source (kustomize-controller
  `SourceRevisionChangePredicate`); one reconcile runs at a time per Kustomization, and one that arrives
  meanwhile waits for it (controller-runtime's work queue), then reconciles the newest revision. So a
  commit that was fetched gets its own status even when a newer one lands during its reconcile.
- How long: a healthy reconcile takes `delay`; a failing health check only fails after `timeout`
  (`WaitForSetWithContext` with `obj.GetTimeout()`). A reconcile of manifests that are already applied
  and healthy on that cluster is a no-op (`apply` changes nothing, the objects are Current at once) and
  reports at once. With an `interval`, the same commit is reconciled again every `interval` seconds
  (`RequeueAfter`), which is where self-heal and drift come from.
- What: the status is posted on the revision reconciled, with the event reason in words
  (`formatNameAndDescription`: `ReconciliationSucceeded` -> "reconciliation succeeded"); severity info ->
  GitHub `success` / Azure DevOps `succeeded`, error -> `failure` / `error` (`toGitHubState`,
  `toAzureDevOpsState`); Azure DevOps genre `fluxcd`, or `fluxcd:<summary>` (`commitStatusGenre`). The
  context is `kustomization/<name>/<first 8 hex of the Provider UID>` (`generateCommitStatusID`), one
  Provider per cluster, or the scenario's `commit_status` template (a `commitStatusExpr`).
- Never `pending`, and nothing when the newest status of that context on the commit already has the same
  state and description (`duplicateGithubStatus`, `duplicateAzureDevOpsStatus`).
- Versions (`flux.version`, notification-controller's): up to 1.7 info events such as DependencyNotReady
  reach the forge as `success`; 1.8.0 posts nothing for Kustomizations; 1.8.1-1.8.4 only successes.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import math
import threading
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

from promoter.config import CONFIG_FILE, parse_config
from promoter.errors import PromoterError
from sandbox.forge import Forge, ForgeError, Repository
from sandbox.gitrepo import GitError
from sandbox.scenario import Flux, Outcome, Plan, Scenario

log = logging.getLogger("sandbox.flux")
FLUX_USER = "flux"
Severity = Literal["info", "error"]
# The Ready condition's reason kustomize-controller gives each outcome (fluxcd/pkg apis/meta), which its
# `event` sends as the event reason, and the event's severity.
REASONS: dict[Outcome, tuple[str, Severity]] = {
    "healthy": ("ReconciliationSucceeded", "info"),
    "failing": ("HealthCheckFailed", "error"),
    "build-failed": ("BuildFailed", "error"),
    "apply-failed": ("ReconciliationFailed", "error"),
    "prune-failed": ("PruneFailed", "error"),
    "dependency-not-ready": ("DependencyNotReady", "info"),
}


def split_camelcase(src: str) -> list[str]:
    """notification-controller's `splitCamelcase` (internal/notifier/util.go), rune class by rune class."""
    classes = {"Ll": 1, "Lu": 2, "Nd": 3}  # Go's unicode.IsLower, IsUpper, IsDigit; anything else is 4
    runs: list[list[str]] = []
    last = 0
    for char in src:
        kind = classes.get(unicodedata.category(char), 4)
        if kind == last:
            runs[-1].append(char)
        else:
            runs.append([char])
        last = kind
    for i in range(len(runs) - 1):  # "PDFL" "oader" -> "PDF" "Loader"
        if unicodedata.category(runs[i][0]) == "Lu" and unicodedata.category(runs[i + 1][0]) == "Ll":
            runs[i + 1].insert(0, runs[i].pop())
    return ["".join(run) for run in runs if run]


def describe(reason: str) -> str:
    """The commit status description for an event reason (`formatNameAndDescription`)."""
    return " ".join(split_camelcase(reason)).lower()


HEALTHY = describe("ReconciliationSucceeded")
FAILING = describe("HealthCheckFailed")
BUILD_FAILED = describe("BuildFailed")


@dataclass(frozen=True)
class Kustomization:
    group: str
    env: str

    @property
    def name(self) -> str:
        return f"{self.group}-{self.env}"


def provider_uid(repo: Repository, cluster: int, name: str) -> str:
    """The first 8 hex of a cluster's Provider UID; the first cluster keeps the repository's own."""
    if cluster == 0:
        return repo.flux_uid
    return hashlib.sha256(f"flux-provider:{repo.key}:{name}".encode()).hexdigest()[:8]


def context(repo: Repository, kustomization: str, cluster: int = 0, flux: Flux | None = None) -> str:
    """The status context a cluster's Provider posts for a Kustomization."""
    flux = flux or Flux()
    name = flux.cluster_names[cluster] if cluster < len(flux.cluster_names) else f"cluster-{cluster + 1}"
    fields = {"kind": "Kustomization", "name": kustomization, "uid": provider_uid(repo, cluster, name)}
    if flux.commit_status == Flux().commit_status:
        return flux.commit_status.format(**fields).lower()  # generateDefaultCommitStatus lowercases
    return flux.commit_status.format(**fields, cluster=name)


def posts(flux: Flux, severity: Severity, reason: str) -> bool:
    """Whether this notification-controller version lets the event through to a commit status provider.

    1.8.0 wanted the event's commit key, which Kustomization events lack (notification-controller#1246,
    flux2#5737; fixed in 1.8.1 by #1247). 1.8.1-1.8.4 let through only the success event kustomize-controller
    marks as a commit status update (notification-controller#1373; #1317 fixes error events). From 1.8 an
    info event without that mark (DependencyNotReady) is dropped; before, every info event was `success`.
    """
    release = flux.release
    if release[:2] < (1, 8):
        return True
    if release == (1, 8, 0):
        return False
    if reason == "ReconciliationSucceeded":
        return True
    return severity == "error" and release >= (1, 9, 0)


@dataclass
class _Run:
    """One Kustomization on one cluster: controller-runtime runs one reconcile of it at a time."""

    repo: Repository
    cluster: int
    kustomization: Kustomization
    running: str | None = None
    queued: bool = False
    started: float = 0.0
    plan: Plan | None = None
    scenario: Scenario | None = None
    token: int = 0
    attempts: dict[str, int] = field(default_factory=dict)
    applied: str | None = None  # digest of the manifests this cluster last reconciled healthy


@dataclass(frozen=True)
class _Content:
    """What one Kustomization's folder holds at one commit: its setter markers, None if it does not build."""

    deployed: list[tuple[str, str | None]] | None
    digest: str


class FluxEmulator:
    def __init__(self, forge: Forge, scenario: Scenario | None = None) -> None:
        self.forge = forge
        self.scenario = scenario or Scenario()
        self._cond = threading.Condition()
        self._moved: dict[str, Repository] = {}
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._sequence = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name="sandbox-flux", daemon=True)
        self._epoch = time.monotonic()
        self._sources: dict[tuple[str, int], str] = {}
        self._fetching: set[tuple[str, int]] = set()
        self._runs: dict[tuple[str, int, str], _Run] = {}
        self._kustomization_cache: dict[tuple[str, str], list[Kustomization]] = {}
        self._cache: dict[tuple[str, str, str], _Content] = {}

    def start(self) -> None:
        self.forge.subscribe(self._on_ref)
        for repo in self.forge.repos():
            if repo.branches.get(repo.default_branch):
                self._on_ref(repo, repo.default_branch, None, repo.branches[repo.default_branch])
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def set_scenario(self, scenario: Scenario) -> None:
        with self._cond:
            self.scenario = scenario
            self._cond.notify_all()

    def _on_ref(self, repo: Repository, branch: str, before: str | None, after: str | None) -> None:
        """Called on the forge's request threads: hand over to the emulator's own thread at once."""
        del before
        if branch != repo.default_branch or after is None:
            return
        with self._cond:
            self._moved[repo.key] = repo
            self._cond.notify_all()

    # -- the emulator's thread: the only one that touches the state below ----------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._moved and not self._ready():
                    self._cond.wait(timeout=self._due[0][0] - time.monotonic() if self._due else None)
                if self._stopping:
                    return
                moved, self._moved = list(self._moved.values()), {}
            for repo in moved:
                self._guarded(self._on_main, repo)
            while self._ready():
                _, _, action = heapq.heappop(self._due)
                self._guarded(action)

    def _ready(self) -> bool:
        return bool(self._due) and self._due[0][0] <= time.monotonic()

    def _at(self, when: float, action: Callable[[], None]) -> None:
        self._sequence += 1
        heapq.heappush(self._due, (when, self._sequence, action))

    def _guarded(self, action: Callable[..., None], *args: object) -> None:
        try:
            action(*args)
        except Exception:
            log.exception("flux emulator step failed")

    def _on_main(self, repo: Repository) -> None:
        """Main moved: each cluster fetches at its next poll (at once with a Receiver, `poll: 0`)."""
        flux = self.scenario.flux
        now = time.monotonic()
        for cluster in range(len(flux.cluster_names)):
            key = (repo.key, cluster)
            if key in self._fetching:
                continue
            self._fetching.add(key)
            self._at(self._next_poll(now, cluster, flux), partial(self._fetch, repo, cluster))

    def _next_poll(self, now: float, cluster: int, flux: Flux) -> float:
        if flux.poll == 0:
            return now
        phase = self._epoch + flux.poll * cluster / len(flux.cluster_names)  # clusters poll out of step
        return phase + math.ceil((now - phase) / flux.poll) * flux.poll

    def _fetch(self, repo: Repository, cluster: int) -> None:
        """source-controller: the artifact becomes main's head now, whatever landed since the last fetch."""
        self._fetching.discard((repo.key, cluster))
        head = repo.branches.get(repo.default_branch)
        if head is None or not self.scenario.watches(repo.full_name):
            return
        if self._sources.get((repo.key, cluster)) == head:
            return
        self._sources[(repo.key, cluster)] = head
        for kustomization in self._kustomizations(repo, head):
            key = (repo.key, cluster, kustomization.name)
            run = self._runs.setdefault(key, _Run(repo, cluster, kustomization))
            self._trigger(run)

    def _trigger(self, run: _Run) -> None:
        if run.running is not None:
            run.queued = True
        else:
            self._start(run)

    def _start(self, run: _Run) -> None:
        revision = self._sources[(run.repo.key, run.cluster)]
        if run.kustomization not in self._kustomizations(run.repo, revision):
            return  # the environment's folder is gone at this revision
        run.attempts = {revision: run.attempts.get(revision, 0) + 1}
        run.running, run.started, run.scenario = revision, time.monotonic(), self.scenario
        run.plan = self._plan(run, revision)
        run.token += 1
        self._at(run.started + run.plan.duration, partial(self._finish, run, run.token))

    def _plan(self, run: _Run, revision: str) -> Plan:
        """The scenario's plan; a healthy reconcile of manifests already applied and healthy is a no-op.

        kustomize-controller's server-side apply changes nothing then (`apply` emits no change event) and
        the health checks find every object Current at their first poll, so only the status is new.
        """
        content = self._content(run.repo, revision, run.kustomization)
        deployed = content.deployed
        scenario = self.scenario
        cluster = scenario.flux.cluster_names[min(run.cluster, len(scenario.flux.cluster_names) - 1)]
        plan = scenario.plan(
            run.repo.full_name,
            run.kustomization.group,
            run.kustomization.env,
            deployed or [],
            cluster,
            run.attempts[revision] - 1,
        )
        if deployed is None:  # the manifests do not build: kustomize-controller `build` fails at once
            return Plan("build-failed", plan.delay, plan.delay, plan.interval)
        if plan.outcome == "healthy" and run.applied == content.digest:
            return Plan("healthy", 0.0, plan.delay, plan.interval)
        return plan

    def _finish(self, run: _Run, token: int) -> None:
        if token != run.token or run.running is None or run.plan is None:
            return
        revision = run.running
        if run.scenario is not self.scenario:  # the scenario changed meanwhile: it decides, as Flux would
            run.scenario, run.plan = self.scenario, self._plan(run, revision)
            if run.started + run.plan.duration > time.monotonic():
                self._at(run.started + run.plan.duration, partial(self._finish, run, run.token))
                return
        self._post(run, revision, run.plan.outcome)
        healthy = run.plan.outcome in ("healthy", "never")  # `never`: the cluster is fine, the event lost
        run.applied = self._content(run.repo, revision, run.kustomization).digest if healthy else None
        run.running = None
        if run.queued:
            run.queued = False
            self._start(run)
        elif run.plan.interval is not None:
            run.token += 1
            self._at(time.monotonic() + run.plan.interval, partial(self._requeue, run, run.token))

    def _requeue(self, run: _Run, token: int) -> None:
        if token == run.token and run.running is None:
            self._start(run)

    # -- reading the repository ------------------------------------------------------------------------

    def _kustomizations(self, repo: Repository, sha: str) -> list[Kustomization]:
        key = (repo.key, sha)
        if key not in self._kustomization_cache:
            self._kustomization_cache[key] = self._read_kustomizations(repo, sha)
        return self._kustomization_cache[key]

    def _read_kustomizations(self, repo: Repository, sha: str) -> list[Kustomization]:
        git = self.forge.git(repo)
        text = git.read_file(sha, CONFIG_FILE)
        if text is None:
            return []
        try:
            config = parse_config(text.decode("utf-8", errors="replace"), CONFIG_FILE)
        except PromoterError as error:
            log.warning("%s@%s: Flux cannot read %s: %s", repo.full_name, sha[:8], CONFIG_FILE, error)
            return []
        result = []
        for group in git.tree_dirs(sha):
            envs = set(git.tree_dirs(sha, group))
            result += [Kustomization(group, env) for env in config.environment_names if env in envs]
        return result

    def _content(self, repo: Repository, sha: str, kustomization: Kustomization) -> _Content:
        """(app, tag) of every setter marker under <group>/<env>/ and a digest of the folder."""
        key = (repo.key, sha, kustomization.name)
        if key not in self._cache:
            from promoter.manifests import find_markers

            files = self.forge.git(repo).files(sha, f"{kustomization.group}/{kustomization.env}")
            digest = hashlib.sha256(repr(sorted(files.items())).encode()).hexdigest()
            deployed: list[tuple[str, str | None]] | None = []
            for path, data in sorted(files.items()):
                if not path.endswith((".yaml", ".yml")):
                    continue
                try:
                    markers = find_markers(data.decode("utf-8"), path)
                except (PromoterError, UnicodeDecodeError) as error:
                    log.info("%s@%s: %s does not build: %s", repo.full_name, sha[:8], path, error)
                    deployed = None
                    break
                assert deployed is not None
                deployed += [(m.app, m.tag) for m in markers if m.group == kustomization.group]
            self._cache[key] = _Content(deployed, digest)
        return self._cache[key]

    # -- posting, as notification-controller's git notifiers do --------------------------------------

    def _post(self, run: _Run, sha: str, outcome: Outcome) -> None:
        if outcome == "never":
            return
        flux = self.scenario.flux
        reason, severity = REASONS[outcome]
        if not posts(flux, severity, reason):
            log.info("flux %s: drops %s for %s@%s", flux.version, reason, run.kustomization.name, sha[:8])
            return
        repo, name = run.repo, context(run.repo, run.kustomization.name, run.cluster, flux)
        description = describe(reason)
        if repo.kind == "azure":
            state = "succeeded" if severity == "info" else "error"
            genre: str | None = f"fluxcd:{flux.summary}" if flux.summary else "fluxcd"
        else:
            state, genre = ("success" if severity == "info" else "failure"), None
        newest = next(
            (
                s
                for s in self.forge.statuses(repo, sha)
                if s.context == name and (genre is None or s.genre == genre)
            ),
            None,
        )
        if newest is not None and (newest.state, newest.description) == (state, description):
            return
        try:
            self.forge.add_status(repo, sha, FLUX_USER, state, name, description, genre=genre)
        except (GitError, ForgeError) as error:
            log.warning("flux could not post on %s@%s: %s", repo.full_name, sha[:8], error)
            return
        log.info("flux: %s %s@%s %s (%s)", repo.full_name, name, sha[:8], state, description)
