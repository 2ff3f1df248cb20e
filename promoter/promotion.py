"""Where a release goes (`Target`) and the handle every stage works through (`Promotion`).

One `Target` serves the flow, the approval sweeper and the CLI: built once from what the caller passed
(flow parameters, command-line flags) and, for everything not passed, the worker's `PROMOTER_*`
variables, then checked before any clone or request. A bad value fails at once with one line naming
where it came from, what it was and what to use, instead of a validation report or a traceback from
deep inside a stage.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Self

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from promoter.config import CONFIG_FILE, Config, parse_config
from promoter.errors import ConfigError, InvalidInputError, PromoterError
from promoter.providers.base import GitProvider, MergeMethod
from promoter.providers.factory import ProviderKind, parse_remote, provider_for
from promoter.validation import given
from promoter.workspace import Workspace

ENV_PREFIX = "PROMOTER_"
# What to use instead, for each field a caller or the environment can get wrong.
_USE = {
    "gitops_url": "give the GitOps repository's https clone URL",
    "provider": "use 'github' or 'azdo', or leave it out",
    "cache_dir": "give a directory",
    "merge_method": "use merge, squash or rebase",
    "poll_interval": "give a positive number of seconds",
    "status_pattern": "give a regular expression with a (?P<name>...) group",
    "wait_window_seconds": "give a number of seconds, 0 or more",
}


class Target(BaseSettings):
    """Where a release goes: the GitOps repository and how to work on it.

    Serializable and free of secrets (the token is read from `PROMOTER_TOKEN` in the process that does
    the work), so it can be a task parameter and cross process boundaries. Each field not given is read
    from `PROMOTER_<FIELD>`; an empty variable counts as unset.
    """

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, frozen=True)

    gitops_url: str
    provider: ProviderKind | None = None
    cache_dir: str = ""
    merge_method: MergeMethod = "merge"
    poll_interval: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 5.0
    status_pattern: str | None = None
    # How long a merge or Flux wait polls in its process before the run suspends (holding no process)
    # until a forge webhook or the wait watcher resumes it.
    wait_window_seconds: Annotated[float, Field(ge=0, allow_inf_nan=False)] = 20.0

    @model_validator(mode="after")
    def _known_forge(self) -> Self:
        parse_remote(self.gitops_url, self.provider)  # InvalidInputError: which URL, and what to pass
        return self

    @classmethod
    def of(cls, values: Mapping[str, Any], names: Mapping[str, str] | None = None) -> Target:
        """The target from `values` (None or "" means not given), the rest from the environment.

        `names` says how the caller calls each value (a flag, a parameter) for the error message;
        `PromoterError` names the variable or parameter, the value given and what to use.
        """
        passed = {key: value for key, value in values.items() if value not in (None, "")}
        try:
            return cls(**passed)
        except ValidationError as error:
            raise _explain(error, passed, names or {}) from None

    @property
    def cache_path(self) -> Path:
        """Cached clones: `cache_dir`, else `$XDG_CACHE_HOME/promoter/git`, else `~/.cache/promoter/git`."""
        if self.cache_dir:
            return Path(self.cache_dir)
        return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "promoter" / "git"

    @contextmanager
    def forge(self, token: str | None = None) -> Iterator[GitProvider]:
        """The forge's API alone, for stages that touch no git (checks, merges, reading a PR)."""
        provider = provider_for(parse_remote(self.gitops_url, self.provider), _token(token))
        try:
            yield provider
        finally:
            provider.close()

    @contextmanager
    def open(
        self, refresh: bool = True, *, token: str | None = None, config: Config | None = None
    ) -> Iterator[Promotion]:
        """A `Promotion` on this target; the forge client is closed at the end.

        The config is `gitops-promotion.yaml` on main of the cached clone, unless `config` is given (the
        CLI reads it from the checkout it runs in; stages that need main then fetch it themselves).
        `refresh=False` skips the fetch when the cached clone already has main: for a stage that fetches
        by itself (a push, a Flux poll) or that runs right after one that did.
        """
        remote = parse_remote(self.gitops_url, self.provider)
        username = "x-access-token" if remote.kind == "github" else "promoter"
        with self.forge(token) as provider:
            workspace = Workspace(remote.clone_url, self.cache_path, token=_token(token), username=username)
            if config is None:
                if refresh or workspace.remote_sha(workspace.base_branch) is None:
                    workspace.fetch()
                text = workspace.read(CONFIG_FILE)
                config = parse_config(text, f"{CONFIG_FILE} on {workspace.base_branch}")
            yield Promotion(config, workspace, provider, self)


@dataclass
class Promotion:
    """What a stage needs: the repository's config, its cached clone, its forge, and the target's options."""

    config: Config
    workspace: Workspace
    provider: GitProvider
    target: Target

    @property
    def base(self) -> str:
        return self.workspace.base_branch


def _token(given_token: str | None) -> str:
    return given_token if given_token is not None else os.environ.get("PROMOTER_TOKEN", "")


def _explain(error: ValidationError, passed: Mapping[str, Any], names: Mapping[str, str]) -> PromoterError:
    """The first problem as one line; a passed value is bad input, a variable is the worker's config."""
    item = error.errors()[0]
    field = str(item["loc"][0]) if item["loc"] else ""
    variable = f"{ENV_PREFIX}{field.upper()}"
    if item["type"] == "missing":
        return ConfigError(f"no GitOps repository: pass gitops_url or set {variable} for the worker")
    use = _USE.get(field, "see the documentation of the promoter's settings")
    if field in passed:
        return InvalidInputError(
            f"{names.get(field, f'the {field} parameter')} is {given(item['input'])}: {use}"
        )
    return ConfigError(f"{variable} is {given(item['input'])}: {use}")
