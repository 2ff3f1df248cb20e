"""GitHub's GraphQL endpoint (`/api/graphql`): auto-merge on and off, and reading a pull request.

Queries are parsed, validated and executed by graphql-core against GitHub's own schema when the specs
folder is present (so a query GitHub would reject is rejected here too, and a value the forge returns
that breaks the schema is reported as a violation); without specs, against the small subset below, whose
types and fields are copied by name from GitHub's schema.

Like GitHub, `enablePullRequestAutoMerge` fails with "Pull request Pull request is in clean status" when
the pull request could be merged right now: a client must then merge it directly. While GitHub is still
computing the mergeability it fails with "Pull request Pull request is in unstable status" (see
github_mergeability.py): a client must wait and try again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graphql import GraphQLError, GraphQLSchema, build_schema, graphql_sync

from sandbox.forge import AutoMerge, Forge, ForgeError, MergeMethod, PullRequest, Repository
from sandbox.github_json import iso

SUBSET_SDL = """
schema { query: Query mutation: Mutation }
scalar DateTime
scalar GitObjectID
scalar URI
interface Node { id: ID! }
interface Actor { login: String! }
type User implements Node & Actor { id: ID! login: String! }
type Query {
  node(id: ID!): Node
  repository(owner: String!, name: String!, followRenames: Boolean = true): Repository
  viewer: User!
}
type Repository implements Node {
  id: ID!
  name: String!
  nameWithOwner: String!
  pullRequest(number: Int!): PullRequest
}
enum PullRequestState { CLOSED MERGED OPEN }
enum PullRequestMergeMethod { MERGE REBASE SQUASH }
enum MergeableState { CONFLICTING MERGEABLE UNKNOWN }
enum MergeStateStatus { BEHIND BLOCKED CLEAN DIRTY HAS_HOOKS UNKNOWN UNSTABLE }
type Commit implements Node { id: ID! oid: GitObjectID! }
type AutoMergeRequest {
  authorEmail: String
  commitBody: String
  commitHeadline: String
  enabledAt: DateTime
  enabledBy: Actor
  mergeMethod: PullRequestMergeMethod!
  pullRequest: PullRequest!
}
type PullRequest implements Node {
  id: ID!
  number: Int!
  title: String!
  body: String!
  url: URI!
  state: PullRequestState!
  merged: Boolean!
  mergedAt: DateTime
  headRefName: String!
  headRefOid: GitObjectID!
  baseRefName: String!
  mergeable: MergeableState!
  mergeStateStatus: MergeStateStatus!
  mergeCommit: Commit
  autoMergeRequest: AutoMergeRequest
}
input EnablePullRequestAutoMergeInput {
  authorEmail: String
  clientMutationId: String
  commitBody: String
  commitHeadline: String
  expectedHeadOid: GitObjectID
  mergeMethod: PullRequestMergeMethod = MERGE
  pullRequestId: ID!
}
type EnablePullRequestAutoMergePayload { actor: Actor clientMutationId: String pullRequest: PullRequest }
input DisablePullRequestAutoMergeInput { clientMutationId: String pullRequestId: ID! }
type DisablePullRequestAutoMergePayload { actor: Actor clientMutationId: String pullRequest: PullRequest }
type Mutation {
  disablePullRequestAutoMerge(input: DisablePullRequestAutoMergeInput!): DisablePullRequestAutoMergePayload
  enablePullRequestAutoMerge(input: EnablePullRequestAutoMergeInput!): EnablePullRequestAutoMergePayload
}
"""


def subset_schema() -> GraphQLSchema:
    return build_schema(SUBSET_SDL)


class Unprocessable(GraphQLError):
    """A refused mutation; carries GitHub's `type` in the error's extensions-free top level."""

    def __init__(self, message: str, kind: str = "UNPROCESSABLE") -> None:
        super().__init__(message)
        self.kind = kind


class GraphQL:
    """One request's resolvers; `computing` says whether a pull request's mergeability is still unknown."""

    def __init__(
        self,
        forge: Forge,
        base_url: str,
        login: str,
        computing: Callable[[Repository, PullRequest], bool] | None = None,
    ) -> None:
        self.forge = forge
        self.base_url = base_url
        self.login = login
        self.computing = computing or (lambda _repo, _pr: False)

    def execute(self, schema: GraphQLSchema, body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """(response body, schema violations of the forge's own data)."""
        query = body.get("query")
        variables = body.get("variables")
        if not isinstance(query, str) or not isinstance(variables, dict | None):
            return {"errors": [{"message": "A query attribute must be specified and must be a string."}]}, []
        result = graphql_sync(
            schema,
            query,
            root_value=self._root(),
            variable_values=variables,
            operation_name=body.get("operationName"),
        )
        out: dict[str, Any] = {}
        if result.errors:
            out["errors"] = []
            for err in result.errors:
                item: dict[str, Any] = dict(err.formatted)
                original = err.original_error
                if isinstance(original, Unprocessable):
                    item["type"] = original.kind
                elif isinstance(original, ForgeError):
                    item["type"] = "NOT_FOUND" if original.kind == "not_found" else "UNPROCESSABLE"
                out["errors"].append(item)
        if result.data is not None or result.errors is None:
            out["data"] = result.data
        violations = [
            err.message
            for err in result.errors or []
            if err.path is not None and not isinstance(err.original_error, ForgeError | Unprocessable)
        ]
        return out, violations

    def _root(self) -> dict[str, Callable[..., Any]]:
        return {
            "viewer": lambda _info: {"__typename": "User", "id": f"U_{self.login}", "login": self.login},
            "repository": self._repository,
            "node": self._node,
            "enablePullRequestAutoMerge": self._enable,
            "disablePullRequestAutoMerge": self._disable,
        }

    def _repository(
        self, _info: Any, owner: str, name: str, followRenames: bool = True
    ) -> dict[str, Any] | None:
        try:
            repo = self.forge.repo("github", owner, name)
        except ForgeError:
            raise ForgeError(
                "not_found", f"Could not resolve to a Repository with the name '{owner}/{name}'."
            ) from None

        def pull_request(_info: Any, number: int) -> dict[str, Any]:
            try:
                return self._pull(repo, self.forge.pull(repo, number))
            except ForgeError:
                raise ForgeError(
                    "not_found", f"Could not resolve to a PullRequest with the number of {number}."
                ) from None

        return {
            "__typename": "Repository",
            "id": f"R_{repo.id:x}",
            "name": repo.name,
            "nameWithOwner": repo.full_name,
            "pullRequest": pull_request,
        }

    def _node(self, _info: Any, id: str) -> dict[str, Any] | None:
        try:
            repo, pr = self.forge.repo_for_node(id)
        except ForgeError:
            return None
        return self._pull(repo, pr)

    def _pull(self, repo: Repository, pr: PullRequest) -> dict[str, Any]:
        mergeable = None if self.computing(repo, pr) else self.forge.mergeable(repo, pr)
        green = self.forge.checks(repo, pr.base_ref, pr.head_sha) == ([], [])
        auto = pr.auto_merge
        state = "MERGED" if pr.merged else pr.state.upper()
        if pr.state != "open" or mergeable is None:
            merge_state = "UNKNOWN"
        else:
            merge_state = "DIRTY" if not mergeable else "CLEAN" if green else "BLOCKED"
        data: dict[str, Any] = {
            "__typename": "PullRequest",
            "id": repo.node_id(pr.number),
            "number": pr.number,
            "title": pr.title,
            "body": pr.body,
            "url": f"{self.base_url}/{repo.owner}/{repo.name}/pull/{pr.number}",
            "state": state,
            "merged": pr.merged,
            "mergedAt": iso(pr.merged_at),
            "headRefName": pr.head_ref,
            "headRefOid": pr.head_sha,
            "baseRefName": pr.base_ref,
            "mergeable": {True: "MERGEABLE", False: "CONFLICTING", None: "UNKNOWN"}[mergeable],
            "mergeStateStatus": merge_state,
            "mergeCommit": {
                "__typename": "Commit",
                "id": f"C_{pr.merge_commit_sha}",
                "oid": pr.merge_commit_sha,
            }
            if pr.merge_commit_sha
            else None,
            "autoMergeRequest": None,
        }
        if auto is not None:
            data["autoMergeRequest"] = {
                "authorEmail": None,
                "commitBody": auto.commit_message or None,
                "commitHeadline": auto.commit_title or None,
                "enabledAt": iso(auto.enabled_at),
                "enabledBy": {"__typename": "User", "id": f"U_{auto.enabled_by}", "login": auto.enabled_by},
                "mergeMethod": auto.method.upper(),
                "pullRequest": data,
            }
        return data

    def _target(self, input: dict[str, Any]) -> tuple[Repository, PullRequest]:
        node = input["pullRequestId"]
        try:
            return self.forge.repo_for_node(node)
        except ForgeError:
            raise Unprocessable(
                f"Could not resolve to a node with the global id of '{node}'", "NOT_FOUND"
            ) from None

    def _payload(self, repo: Repository, pr: PullRequest, input: dict[str, Any]) -> dict[str, Any]:
        return {
            "actor": {"__typename": "User", "id": f"U_{self.login}", "login": self.login},
            "clientMutationId": input.get("clientMutationId"),
            "pullRequest": self._pull(repo, pr),
        }

    def _enable(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        repo, pr = self._target(input)
        if pr.state != "open":
            raise Unprocessable("Pull request is closed")
        expected = input.get("expectedHeadOid")
        if expected and expected != pr.head_sha:
            raise Unprocessable("Head sha didn't match expected head sha")
        method: MergeMethod = str(input.get("mergeMethod") or "MERGE").lower()  # type: ignore[assignment]
        if method == "rebase":
            raise Unprocessable("Merge method rebase merging is not allowed on this repository")
        if self.computing(repo, pr):  # see github_mergeability.py
            raise Unprocessable("Pull request Pull request is in unstable status")
        if self.forge.mergeable(repo, pr) and self.forge.checks(repo, pr.base_ref, pr.head_sha) == ([], []):
            raise Unprocessable("Pull request Pull request is in clean status")
        auto = AutoMerge(
            enabled_by=self.login,
            method=method,
            commit_title=input.get("commitHeadline") or "",
            commit_message=input.get("commitBody") or "",
        )
        self.forge.set_auto_merge(repo, pr.number, auto)
        return self._payload(repo, pr, input)

    def _disable(self, _info: Any, input: dict[str, Any]) -> dict[str, Any]:
        repo, pr = self._target(input)
        self.forge.set_auto_merge(repo, pr.number, None)
        return self._payload(repo, pr, input)
