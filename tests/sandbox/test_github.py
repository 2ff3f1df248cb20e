"""The GitHub personality, driven by PyGithub and plain HTTP."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import github
import httpx
import pytest

from sandbox import github_rest as personality
from sandbox.forge import Repository
from sandbox.specs import discover
from sandbox.testing import Sandbox, run_sandbox
from tests.sandbox.conftest import push_branch, settled

BRANCH = "promote/apps-podinfo"


def _headers(sandbox: Sandbox, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"token {token or sandbox.token}", "Accept": "application/vnd.github+json"}


def _open_pr(
    sandbox: Sandbox,
    gh: github.Github,
    clone: Path,
    branch: str = BRANCH,
    path: str = "apps/dev/podinfo.yaml",
    wait: bool = True,
) -> Any:
    """A new PR; unless `wait`, as it is right after creation, while GitHub computes its mergeability."""
    push_branch(sandbox, clone, branch, path, f"edited on {branch}\n")
    pr = gh.get_repo("acme/gitops").create_pull(
        title=f"Promote {branch}", body="body", head=branch, base="main"
    )
    return settled(sandbox, gh, pr.number) if wait else pr


def _post_status(sandbox: Sandbox, sha: str, state: str, context: str = "promoter") -> httpx.Response:
    return httpx.post(
        f"{sandbox.github_api}/repos/acme/gitops/statuses/{sha}",
        json={"state": state, "context": context, "description": "gate"},
        headers=_headers(sandbox),
    )


def test_pull_request_round_trip_with_pygithub(sandbox: Sandbox, gh: github.Github, clone: Path) -> None:
    pr = _open_pr(sandbox, gh, clone)
    repo = gh.get_repo("acme/gitops")

    listed = list(repo.get_pulls(state="open", head=f"acme:{BRANCH}", base="main"))
    assert [p.number for p in listed] == [pr.number]
    assert list(repo.get_pulls(head="acme:no-such-branch")) == []

    assert _post_status(sandbox, pr.head.sha, "pending").status_code == 201
    assert _post_status(sandbox, pr.head.sha, "success").status_code == 201
    statuses = list(repo.get_commit(pr.head.sha).get_statuses())
    assert [s.state for s in statuses] == ["success", "pending"]
    combined = repo.get_commit(pr.head.sha).get_combined_status()
    assert (combined.state, combined.total_count) == ("success", 1)

    result = pr.merge(merge_method="merge")
    assert result.merged
    merged = repo.get_pull(pr.number)
    assert (
        merged.merged and merged.merge_commit_sha == result.sha and merged.merged_by.login == "promoter-bot"
    )
    assert sandbox.forge.repo("github", "acme", "gitops").branches["main"] == result.sha


def test_merge_is_refused_until_required_check_is_green(
    sandbox: Sandbox, gh: github.Github, clone: Path
) -> None:
    pr = _open_pr(sandbox, gh, clone)
    with pytest.raises(github.GithubException) as missing:
        pr.merge()
    assert missing.value.status == 405
    assert missing.value.data["message"] == 'Required status check "promoter" is expected.'
    _post_status(sandbox, pr.head.sha, "failure")
    with pytest.raises(github.GithubException) as failing:
        pr.merge()
    assert failing.value.status == 405 and "is failing" in failing.value.data["message"]
    assert gh.get_repo("acme/gitops").get_pull(pr.number).mergeable_state == "blocked"


def test_duplicate_pull_request_gets_githubs_422(sandbox: Sandbox, gh: github.Github, clone: Path) -> None:
    _open_pr(sandbox, gh, clone)
    with pytest.raises(github.GithubException) as raised:
        gh.get_repo("acme/gitops").create_pull(title="again", body="", head=BRANCH, base="main")
    assert raised.value.status == 422
    assert raised.value.data["errors"][0]["message"] == f"A pull request already exists for acme:{BRANCH}."


def test_invalid_status_state_is_422(sandbox: Sandbox, gh: github.Github, clone: Path) -> None:
    pr = _open_pr(sandbox, gh, clone)
    response = _post_status(sandbox, pr.head.sha, "green")
    assert response.status_code == 422
    assert "documentation_url" in response.json()


def test_status_on_unknown_commit_is_422(sandbox: Sandbox) -> None:
    response = _post_status(sandbox, "0" * 40, "success")
    assert response.status_code == 422
    assert "No commit found for SHA" in response.text


def test_conflicting_merge_is_405_and_leaves_main_alone(
    sandbox: Sandbox, gh: github.Github, clone: Path, gitops: Repository
) -> None:
    first = _open_pr(sandbox, gh, clone, "one", "apps/dev/podinfo.yaml")
    second = _open_pr(sandbox, gh, clone, "two", "apps/dev/podinfo.yaml")
    for pr in (first, second):
        _post_status(sandbox, pr.head.sha, "success")
    assert first.merge().merged
    main = gitops.branches["main"]
    assert settled(sandbox, gh, second.number).mergeable is False  # main moved: computed again
    with pytest.raises(github.GithubException) as raised:
        second.merge()
    assert raised.value.status == 405
    assert gitops.branches["main"] == main


def test_merge_with_stale_sha_is_409(sandbox: Sandbox, gh: github.Github, clone: Path) -> None:
    pr = _open_pr(sandbox, gh, clone)
    _post_status(sandbox, pr.head.sha, "success")
    with pytest.raises(github.GithubException) as raised:
        pr.merge(sha="1" * 40)
    assert raised.value.status == 409


def test_unknown_repository_is_404(gh: github.Github) -> None:
    with pytest.raises(github.UnknownObjectException):
        gh.get_repo("acme/nope")


def test_malformed_json_is_400(sandbox: Sandbox) -> None:
    response = httpx.post(
        f"{sandbox.github_api}/repos/acme/gitops/pulls", content=b"{not json", headers=_headers(sandbox)
    )
    assert response.status_code == 400
    assert response.json()["message"] == "Problems parsing JSON"


def test_unknown_token_is_401_and_never_echoed(sandbox: Sandbox) -> None:
    response = httpx.get(f"{sandbox.github_api}/repos/acme/gitops", headers=_headers(sandbox, "secret-guess"))
    assert response.status_code == 401
    assert response.json()["message"] == "Bad credentials"
    assert "secret-guess" not in response.text
    assert all(row["user"] != "secret-guess" for row in sandbox.stats()["routes"])


def test_statuses_are_paginated_newest_first(sandbox: Sandbox, clone: Path) -> None:
    sha = push_branch(sandbox, clone, BRANCH, "apps/dev/podinfo.yaml", "edited\n")
    for index in range(5):
        _post_status(sandbox, sha, "pending", f"ctx-{index}")
    page = httpx.get(
        f"{sandbox.github_api}/repos/acme/gitops/commits/{BRANCH}/statuses",
        params={"per_page": 2},
        headers=_headers(sandbox),
    )
    assert [s["context"] for s in page.json()] == ["ctx-4", "ctx-3"]
    assert 'rel="next"' in page.headers["link"]
    last = httpx.get(
        f"{sandbox.github_api}/repos/acme/gitops/commits/{sha}/statuses",
        params={"per_page": 2, "page": 3},
        headers=_headers(sandbox),
    )
    assert [s["context"] for s in last.json()] == ["ctx-0"]


def test_conditional_get_is_304_and_not_counted(sandbox: Sandbox, clone: Path) -> None:
    sha = push_branch(sandbox, clone, BRANCH, "apps/dev/podinfo.yaml", "edited\n")
    url = f"{sandbox.github_api}/repos/acme/gitops/commits/{sha}/status"
    first = httpx.get(url, headers=_headers(sandbox))
    remaining = int(first.headers["x-ratelimit-remaining"])
    again = httpx.get(url, headers={**_headers(sandbox), "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert int(again.headers["x-ratelimit-remaining"]) == remaining
    _post_status(sandbox, sha, "success", "other")
    changed = httpx.get(url, headers={**_headers(sandbox), "If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200
    assert int(changed.headers["x-ratelimit-remaining"]) == remaining - 2  # the POST and this GET
    row = next(r for r in sandbox.stats()["routes"] if r["route"].endswith("/commits/{ref:path}/status"))
    assert (row["counted"], row["conditional"], row["user"]) == (2, 1, "promoter-bot")


def test_rate_limit_budget_is_enforced(tmp_path: Path) -> None:
    with run_sandbox(tmp_path, seed_demo=True, rate_limit=2) as sandbox:
        url = f"{sandbox.github_api}/repos/acme/gitops"
        codes = [httpx.get(url, headers=_headers(sandbox)).status_code for _ in range(3)]
        assert codes == [200, 200, 403]
        human = httpx.get(url, headers=_headers(sandbox, sandbox.human_token))
        assert human.status_code == 200  # budgets are per user


def test_compare_reports_ancestry(sandbox: Sandbox, gh: github.Github, clone: Path) -> None:
    pr = _open_pr(sandbox, gh, clone)
    comparison = gh.get_repo("acme/gitops").compare("main", BRANCH)
    assert (comparison.status, comparison.ahead_by, comparison.behind_by) == ("ahead", 1, 0)
    assert [c.sha for c in comparison.commits] == [pr.head.sha]
    assert [f.filename for f in comparison.files] == ["apps/dev/podinfo.yaml"]
    backwards = gh.get_repo("acme/gitops").compare(BRANCH, "main")
    assert backwards.status == "behind"


def test_pulls_for_a_commit_and_refs(sandbox: Sandbox, gh: github.Github, clone: Path) -> None:
    pr = _open_pr(sandbox, gh, clone)
    _post_status(sandbox, pr.head.sha, "success")
    sha = pr.merge().sha
    associated = httpx.get(
        f"{sandbox.github_api}/repos/acme/gitops/commits/{sha}/pulls", headers=_headers(sandbox)
    )
    assert [p["number"] for p in associated.json()] == [pr.number]
    ref = httpx.get(f"{sandbox.github_api}/repos/acme/gitops/git/ref/heads/main", headers=_headers(sandbox))
    assert ref.json()["object"]["sha"] == sha
    missing = httpx.get(
        f"{sandbox.github_api}/repos/acme/gitops/git/ref/heads/nope", headers=_headers(sandbox)
    )
    assert missing.status_code == 404


def test_branch_protection_can_be_changed(sandbox: Sandbox, gh: github.Github, clone: Path) -> None:
    url = f"{sandbox.github_api}/repos/acme/gitops/branches/main/protection"
    body = {
        "required_status_checks": {"strict": False, "contexts": []},
        "enforce_admins": None,
        "required_pull_request_reviews": None,
        "restrictions": None,
    }
    assert httpx.put(url, json=body, headers=_headers(sandbox)).status_code == 200
    pr = _open_pr(sandbox, gh, clone)
    assert pr.merge().merged  # nothing required any more
    assert httpx.get(url, headers=_headers(sandbox)).json()["required_status_checks"]["contexts"] == []


def test_closing_and_reopening_a_pull_request(sandbox: Sandbox, gh: github.Github, clone: Path) -> None:
    pr = _open_pr(sandbox, gh, clone)
    pr.edit(state="closed", title="renamed")
    closed = gh.get_repo("acme/gitops").get_pull(pr.number)
    assert (closed.state, closed.title, closed.merged) == ("closed", "renamed", False)
    assert list(gh.get_repo("acme/gitops").get_pulls(head=f"acme:{BRANCH}")) == []
    pr.edit(state="open")
    assert gh.get_repo("acme/gitops").get_pull(pr.number).state == "open"


def test_create_repository_for_user_and_org(sandbox: Sandbox, gh: github.Github) -> None:
    mine = gh.get_user().create_repo("scratch", auto_init=True)
    assert mine.full_name == "promoter-bot/scratch"
    assert sandbox.forge.repo("github", "promoter-bot", "scratch").branches.get("main")
    org = httpx.post(
        f"{sandbox.github_api}/orgs/acme/repos", json={"name": "other"}, headers=_headers(sandbox)
    )
    assert org.status_code == 201 and org.json()["full_name"] == "acme/other"
    again = httpx.post(
        f"{sandbox.github_api}/orgs/acme/repos", json={"name": "other"}, headers=_headers(sandbox)
    )
    assert again.status_code == 422
    bad = httpx.post(
        f"{sandbox.github_api}/orgs/acme/repos", json={"name": "../evil"}, headers=_headers(sandbox)
    )
    assert bad.status_code == 422


def test_head_without_owner_is_ignored_as_github_does(
    sandbox: Sandbox, gh: github.Github, clone: Path
) -> None:
    first = _open_pr(sandbox, gh, clone, "one", "notes/one.txt")
    second = _open_pr(sandbox, gh, clone, "two", "notes/two.txt")
    repo = gh.get_repo("acme/gitops")
    assert [p.number for p in repo.get_pulls(head="one")] == [second.number, first.number]
    assert [p.number for p in repo.get_pulls(head="acme:one")] == [first.number]
    assert list(repo.get_pulls(head="someone-else:one")) == []


def test_mergeability_is_unknown_until_github_has_computed_it(
    sandbox: Sandbox, gh: github.Github, clone: Path
) -> None:
    sandbox.set_mergeability_delay(3.0)
    pr = _open_pr(sandbox, gh, clone, wait=False)
    assert (pr.mergeable, pr.mergeable_state, pr.raw_data["rebaseable"]) == (None, "unknown", None)
    _post_status(sandbox, pr.head.sha, "success")
    with pytest.raises(github.GithubException) as early:
        pr.merge()
    assert (early.value.status, early.value.data["message"]) == (405, personality.BASE_MODIFIED)
    assert pr.mergeable is None  # PyGithub keeps what it read: a client must read the PR again
    ready = settled(sandbox, gh, pr.number)
    assert (ready.mergeable, ready.mergeable_state) == (True, "clean")
    assert ready.merge().merged


def test_a_moved_base_makes_other_pull_requests_unknown_again(
    sandbox: Sandbox, gh: github.Github, clone: Path
) -> None:
    first = _open_pr(sandbox, gh, clone, "one", "notes/one.txt")
    second = _open_pr(sandbox, gh, clone, "two", "notes/two.txt")
    _post_status(sandbox, first.head.sha, "success")
    assert first.merge().merged
    assert gh.get_repo("acme/gitops").get_pull(second.number).mergeable is None
    assert settled(sandbox, gh, second.number).mergeable is True


def test_unsupported_api_version_gets_githubs_400(sandbox: Sandbox) -> None:
    headers = {**_headers(sandbox), "X-GitHub-Api-Version": "2021-01-01"}
    refused = httpx.get(f"{sandbox.github_api}/repos/acme/gitops", headers=headers)
    assert refused.status_code == 400
    assert refused.json() == {
        "message": "Bad Request",
        "errors": 'The version you specified in the "X-GitHub-API-Version" request header, "2021-01-01", '
        'is not a supported version. The following versions are currently supported: "2026-03-10" '
        '(most recent) and "2022-11-28".',
        "documentation_url": "https://docs.github.com/rest",
        "status": "400",
    }
    assert "x-github-api-version-selected" not in refused.headers
    plain = httpx.get(f"{sandbox.github_api}/repos/acme/gitops", headers=_headers(sandbox))
    assert plain.headers["x-github-api-version-selected"] == "2022-11-28"
    newest = httpx.get(
        f"{sandbox.github_api}/repos/acme/gitops",
        headers={**_headers(sandbox), "X-GitHub-Api-Version": "2026-03-10"},
    )
    assert newest.headers["x-github-api-version-selected"] == "2026-03-10"


def test_version_2026_03_10_drops_what_githubs_description_says(
    sandbox: Sandbox, gh: github.Github, clone: Path
) -> None:
    pr = _open_pr(sandbox, gh, clone)
    url = f"{sandbox.github_api}/repos/acme/gitops/pulls/{pr.number}"
    old = httpx.get(url, headers=_headers(sandbox)).json()
    new = httpx.get(url, headers={**_headers(sandbox), "X-GitHub-Api-Version": "2026-03-10"}).json()
    assert {"merge_commit_sha", "assignee"} <= set(old) and not {"merge_commit_sha", "assignee"} & set(new)
    assert "has_downloads" in old["base"]["repo"] and "has_downloads" not in new["base"]["repo"]
    listed = httpx.get(
        f"{sandbox.github_api}/repos/acme/gitops/pulls",
        headers={**_headers(sandbox), "X-GitHub-Api-Version": "2026-03-10"},
    ).json()
    assert "merge_commit_sha" not in listed[0]
    assert sandbox.violations() == []  # checked against the description as patched for 2026-03-10


def test_rate_limit_endpoint_reports_the_budget_and_costs_nothing(sandbox: Sandbox) -> None:
    httpx.get(f"{sandbox.github_api}/repos/acme/gitops", headers=_headers(sandbox))
    first = httpx.get(f"{sandbox.github_api}/rate_limit", headers=_headers(sandbox))
    second = httpx.get(f"{sandbox.github_api}/rate_limit", headers=_headers(sandbox))
    core = second.json()["resources"]["core"]
    assert core == first.json()["resources"]["core"] == second.json()["rate"]
    assert (core["limit"], core["used"], core["remaining"]) == (5000, 1, 4999)
    assert second.json()["resources"]["search"]["limit"] == 30
    newest = httpx.get(
        f"{sandbox.github_api}/rate_limit",
        headers={**_headers(sandbox), "X-GitHub-Api-Version": "2026-03-10"},
    )
    assert "rate" not in newest.json()


def test_pull_request_and_comparison_as_diff_and_patch(
    sandbox: Sandbox, gh: github.Github, clone: Path
) -> None:
    pr = _open_pr(sandbox, gh, clone)
    expected = subprocess.run(
        ["git", "diff", "--no-renames", "origin/main", BRANCH], cwd=clone, capture_output=True, check=True
    ).stdout
    for url in (
        f"{sandbox.github_api}/repos/acme/gitops/pulls/{pr.number}",
        f"{sandbox.github_api}/repos/acme/gitops/compare/main...{BRANCH}",
    ):
        diff = httpx.get(url, headers={**_headers(sandbox), "Accept": "application/vnd.github.diff"})
        assert diff.headers["content-type"] == "application/vnd.github.diff; charset=utf-8"
        assert diff.content == expected and diff.text.startswith("diff --git a/apps/dev/podinfo.yaml")
        patch = httpx.get(url, headers={**_headers(sandbox), "Accept": "application/vnd.github.v3.patch"})
        assert patch.text.startswith(f"From {pr.head.sha} ") and "Subject: [PATCH] edit" in patch.text
    assert sandbox.violations() == []


def test_error_bodies_name_the_operation_and_repeat_the_status(
    sandbox: Sandbox, gh: github.Github, clone: Path
) -> None:
    missing = httpx.get(f"{sandbox.github_api}/repos/acme/gitops/pulls/999", headers=_headers(sandbox))
    assert missing.json() == {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/pulls/pulls#get-a-pull-request",
        "status": "404",
    }
    no_head = httpx.post(
        f"{sandbox.github_api}/repos/acme/gitops/pulls",
        json={"title": "t", "head": "no-such-branch", "base": "main"},
        headers=_headers(sandbox),
    )
    assert no_head.status_code == 422
    assert no_head.json()["errors"] == [{"resource": "PullRequest", "field": "head", "code": "invalid"}]
    assert no_head.json()["status"] == "422"
    bad = httpx.get(f"{sandbox.github_api}/repos/acme/gitops", headers=_headers(sandbox, "nope"))
    assert bad.json()["status"] == "401"


def test_operation_docs_are_the_descriptions_external_docs() -> None:
    specs = discover()
    if specs is None:
        pytest.skip("no API descriptions found")
    document = json.loads((specs / "github" / "api.github.com.json").read_bytes())
    for name, anchor in personality.OPERATION_DOCS.items():
        method, path = name.split(" ", 1)
        operation = document["paths"][path.replace(":path", "")].get(method.lower())
        if operation is None:  # the legacy GET /statuses/{sha}, which the description no longer lists
            continue
        assert operation["externalDocs"]["url"] == f"https://docs.github.com/rest/{anchor}", name


def test_statuses_stop_at_1000_per_sha_and_context(sandbox: Sandbox, gitops: Repository, clone: Path) -> None:
    sha = push_branch(sandbox, clone, BRANCH, "apps/dev/podinfo.yaml", "edited\n")
    for _ in range(personality.STATUS_CAP):
        sandbox.forge.add_status(gitops, sha, "promoter-bot", "pending", "promoter")
    refused = _post_status(sandbox, sha, "success")
    assert refused.status_code == 422
    assert refused.json()["errors"] == (
        "Validation failed: This SHA and context has reached the maximum number of statuses."
    )
    assert _post_status(sandbox, sha, "success", "other").status_code == 201  # per context


def test_etags_are_weak_and_304_repeats_them(sandbox: Sandbox) -> None:
    url = f"{sandbox.github_api}/repos/acme/gitops"
    first = httpx.get(url, headers=_headers(sandbox))
    assert first.headers["etag"].startswith('W/"')
    again = httpx.get(url, headers={**_headers(sandbox), "If-None-Match": first.headers["etag"]})
    assert (again.status_code, again.headers["etag"]) == (304, first.headers["etag"])
