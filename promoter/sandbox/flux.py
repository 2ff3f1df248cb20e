"""A Flux emulator: reports each environment's health on main as notification-controller does.

For every repository it watches, whenever main moves, the emulator reads `gitops-promotion.yaml` at the new
commit, finds the `<group>/<env>/` folders (one Kustomization `<group>-<env>` each, the gitops-promotion
convention), asks the scenario what happens to the app tags deployed there (see `scenario.py`), and after
the scenario's delay posts a commit status on the newest commit of main:

- context `kustomization/<group>-<env>/<8 hex>`, the 8 hex standing for the Flux Provider's UID (stable per
  repository);
- GitHub: `success` "reconciliation succeeded" or `failure` "health check failed";
- Azure DevOps: `succeeded` or `error`, `context.genre` `fluxcd`, `context.name` the same string.

Like Flux, it never posts `pending`, skips commits superseded before their reconcile, and does not post
again when the newest status of that context on the commit already has the same state and description.
"""

from __future__ import annotations

import heapq
import logging
import threading
import time
from dataclasses import dataclass

from promoter.config import CONFIG_FILE, parse_config
from promoter.errors import PromoterError
from promoter.sandbox.forge import Forge, Repository
from promoter.sandbox.gitrepo import GitError
from promoter.sandbox.scenario import Outcome, Scenario

log = logging.getLogger("promoter.sandbox.flux")
FLUX_USER = "flux"
HEALTHY = "reconciliation succeeded"
FAILING = "health check failed"
BUILD_FAILED = "kustomize build failed"


@dataclass(frozen=True)
class Kustomization:
    group: str
    env: str

    @property
    def name(self) -> str:
        return f"{self.group}-{self.env}"


def context(repo: Repository, kustomization: str) -> str:
    return f"kustomization/{kustomization}/{repo.flux_uid}".lower()


class FluxEmulator:
    def __init__(self, forge: Forge, scenario: Scenario | None = None) -> None:
        self.forge = forge
        self.scenario = scenario or Scenario()
        self._cond = threading.Condition()
        self._moved: dict[str, tuple[Repository, str]] = {}
        self._pending: dict[tuple[str, str], tuple[Repository, Kustomization, str, float]] = {}
        self._due: list[tuple[float, int, tuple[str, str]]] = []
        self._sequence = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sandbox-flux", daemon=True)
        self._cache: dict[tuple[str, str, str], list[tuple[str, str | None]] | None] = {}

    def start(self) -> None:
        self.forge.subscribe(self._on_ref)
        for repo in self.forge.repos():
            head = repo.branches.get(repo.default_branch)
            if head:
                self._on_ref(repo, repo.default_branch, None, head)
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
        del before
        if branch != repo.default_branch or after is None:
            return
        with self._cond:
            self._moved[repo.key] = (repo, after)
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                while (
                    not self._stopping
                    and not self._moved
                    and (not self._due or self._due[0][0] > time.monotonic())
                ):
                    self._cond.wait(timeout=self._due[0][0] - time.monotonic() if self._due else None)
                if self._stopping:
                    return
                moved, self._moved = list(self._moved.values()), {}
                fire = []
                while self._due and self._due[0][0] <= time.monotonic():
                    fire.append(heapq.heappop(self._due)[2])
            for repo, sha in moved:
                self._guarded(self._plan, repo, sha)
            for key in fire:
                self._guarded(self._reconcile, key)

    def _guarded(self, action: object, *args: object) -> None:
        try:
            action(*args)  # type: ignore[operator]
        except Exception:
            log.exception("flux emulator step failed")

    def _kustomizations(self, repo: Repository, sha: str) -> list[Kustomization]:
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

    def _deployed(
        self, repo: Repository, sha: str, kustomization: Kustomization
    ) -> list[tuple[str, str | None]] | None:
        """(app, tag) of every setter marker under <group>/<env>/; None when the manifests do not build."""
        key = (repo.key, sha, kustomization.name)
        if key not in self._cache:
            from promoter.manifests import find_markers

            deployed: list[tuple[str, str | None]] | None = []
            for path, data in (
                self.forge.git(repo).files(sha, f"{kustomization.group}/{kustomization.env}").items()
            ):
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
            self._cache[key] = deployed
        return self._cache[key]

    def _decide(
        self, repo: Repository, sha: str, kustomization: Kustomization
    ) -> tuple[Outcome | None, float]:
        deployed = self._deployed(repo, sha, kustomization)
        outcome, delay = self.scenario.decide(
            repo.full_name, kustomization.group, kustomization.env, deployed or []
        )
        return (None if deployed is None else outcome), delay

    def _plan(self, repo: Repository, sha: str) -> None:
        if not self.scenario.watches(repo.full_name):
            return
        now = time.monotonic()
        for kustomization in self._kustomizations(repo, sha):
            _, delay = self._decide(repo, sha, kustomization)
            key = (repo.key, kustomization.name)
            with self._cond:
                scheduled = key in self._pending
                self._pending[key] = (repo, kustomization, sha, now)
                if not scheduled:
                    self._schedule(now + delay, key)

    def _schedule(self, when: float, key: tuple[str, str]) -> None:
        self._sequence += 1
        heapq.heappush(self._due, (when, self._sequence, key))
        self._cond.notify_all()

    def _reconcile(self, key: tuple[str, str]) -> None:
        with self._cond:
            item = self._pending.get(key)
        if item is None:
            return
        repo, kustomization, sha, arrived = item
        outcome, delay = self._decide(repo, sha, kustomization)
        with self._cond:
            if self._pending.get(key) != item:
                self._schedule(time.monotonic(), key)
                return
            if time.monotonic() < arrived + delay:
                self._schedule(arrived + delay, key)
                return
            del self._pending[key]
        if outcome == "never":
            return
        self._post(repo, sha, kustomization, outcome)

    def _post(
        self, repo: Repository, sha: str, kustomization: Kustomization, outcome: Outcome | None
    ) -> None:
        name = context(repo, kustomization.name)
        healthy = outcome == "healthy"
        if repo.kind == "azure":
            state, genre = ("succeeded" if healthy else "error"), "fluxcd"
        else:
            state, genre = ("success" if healthy else "failure"), None
        description = HEALTHY if healthy else FAILING if outcome == "failing" else BUILD_FAILED
        latest = next((s for s in self.forge.latest_statuses(repo, sha) if s.context == name), None)
        if latest is not None and (latest.state, latest.description) == (state, description):
            return
        try:
            self.forge.add_status(repo, sha, FLUX_USER, state, name, description, genre=genre)
        except GitError as error:
            log.warning("flux could not post on %s@%s: %s", repo.full_name, sha[:8], error)
        log.info("flux: %s %s@%s %s (%s)", repo.full_name, kustomization.name, sha[:8], state, description)
