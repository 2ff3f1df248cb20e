from __future__ import annotations

import pytest

from promoter.errors import InvalidInputError
from promoter.pull_request import PRState, branch_name, parse_body

STATE = PRState(group="apps", app="podinfo", tag="a8b91c33", env="qa", sha="0c9c2e41" * 5)
GITOPS_PROMOTION_BODY = (
    '<!-- metadata = {"group":"apps","app":"podinfo","tag":"a8b91c33","env":"qa",'
    '"sha":"0c9c2e410c9c2e410c9c2e410c9c2e410c9c2e41","feature":"","type":"promote"} -->'
    "\n\tENV: qa\n\tAPP: podinfo\n\tTAG: a8b91c33"
)


def test_title_body_and_branches_are_byte_identical_to_gitops_promotion() -> None:
    assert STATE.title() == "Promote apps/podinfo version a8b91c33 to environment qa"
    assert STATE.body() == GITOPS_PROMOTION_BODY
    assert STATE.branch_name("per-app") == "promote/apps-podinfo"
    assert STATE.branch_name("per-env") == "promote/qa/apps-podinfo"
    assert branch_name("apps", "podinfo", "prod", "per-env") == "promote/prod/apps-podinfo"


def test_body_round_trips_and_survives_text_people_add_around_it() -> None:
    assert parse_body(STATE.body()) == STATE
    edited = "Release notes: fixes #12\n\n" + GITOPS_PROMOTION_BODY.replace(" -->", "   -->") + "\n\nLGTM!"
    assert parse_body(edited) == STATE
    compact = GITOPS_PROMOTION_BODY.replace("<!-- metadata = ", "<!--metadata=")
    assert parse_body(compact) == STATE


def test_older_bodies_without_type_or_feature_default_to_promote() -> None:
    body = '<!-- metadata = {"env":"dev","group":"apps","app":"podinfo","tag":"1","sha":""} -->'
    assert parse_body(body).type == "promote"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (None, "no promotion metadata"),
        ("Just a PR", "no promotion metadata"),
        ('<!-- metadata = {"group":"apps", -->', "not valid JSON"),
        ("<!-- metadata = [1] -->", "must be a JSON object"),
        (
            '<!-- metadata = {"group":"apps","app":"podinfo","tag":"1;rm -rf /","env":"dev"} -->',
            "wrong: tag: invalid",
        ),
        (
            '<!-- metadata = {"group":"../..","app":"podinfo","tag":"1","env":"dev"} -->',
            "wrong: group: invalid",
        ),
        ('<!-- metadata = {"group":"apps","app":"podinfo","tag":"1"} -->', "wrong: env is missing"),
        (
            '<!-- metadata = {"group":"apps","app":"podinfo","tag":"1","env":"dev","sha":"xyz"} -->',
            "wrong: sha: sha must be empty or a hex commit id",
        ),
        (
            '<!-- metadata = {"group":"apps","app":"podinfo","tag":1,"env":"dev"} -->',
            "wrong: tag is 1; use text",
        ),
        (
            '<!-- metadata = {"group":"apps","app":"podinfo","tag":"1","env":"dev","digest":"sha256:x"} -->',
            "wrong: digest: invalid image digest",
        ),
    ],
)
def test_malformed_metadata_is_a_clear_error(body: str | None, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        parse_body(body)


def test_a_digest_rides_after_gitops_promotions_keys_and_reads_back() -> None:
    digest = "sha256:" + "ab" * 32
    state = PRState(group="apps", app="podinfo", tag="1.2.3", env="qa", sha="c0ffee", digest=digest)
    body = state.body()
    assert body.startswith(
        '<!-- metadata = {"group":"apps","app":"podinfo","tag":"1.2.3","env":"qa","sha":"c0ffee",'
        f'"feature":"","type":"promote","digest":"{digest}"}} -->'
    )
    assert body.endswith(f"\tTAG: 1.2.3\n\tDIGEST: {digest}")
    assert parse_body(body) == state


def test_without_a_digest_the_body_is_gitops_promotions_byte_for_byte() -> None:
    state = PRState(group="apps", app="podinfo", tag="1", env="dev")
    assert '"digest"' not in state.body() and "DIGEST" not in state.body()
