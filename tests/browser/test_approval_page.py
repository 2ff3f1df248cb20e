"""The approval page as a person sees it: a real Chromium opens the suspended run in the Prefect UI.

The stack is the end-to-end one (the session's Prefect server, the sandbox forge with its Flux emulator,
`promoter serve`, `promoter webhook`); a release of its own app goes dev -> qa and suspends before prod.
Headless Chromium (Debian's `chromium`, driven by Playwright with `executable_path`: Playwright's own browser
download is not needed) opens the run's UI page, checks that the form shows the release, the PR link and the
decision field, approves, and the run completes. A second release, under an approval policy, shows the
policy in the form's description in the classic UI and in the V2 UI (behind "Switch to V2 UI"; its Resume
sits in the run's menu and its decision field is a select), and is rejected from a shell.

Skipped, with the reason, only where Chromium or the Playwright package is missing. The screenshot goes to
the test's temporary directory; with `PROMOTER_SCREENSHOTS=1` they replace `docs/approval-page.png` and
`docs/run-logs.png` (the run's Logs tab, once the release is through) and `docs/board-artifact.png` (the
app's board artifact, which run the release updated after every stage).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox.prefect_server import PrefectServer
from sandbox.sample import DEPLOYMENT
from sandbox.stack import FINAL, Stack, promoter_stack

try:
    from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
except ImportError as error:  # the dev extras install it; say so rather than fail on import
    PLAYWRIGHT_MISSING: str | None = (
        f"the Playwright package is not installed ({error}): pip install playwright"
    )
else:
    PLAYWRIGHT_MISSING = None

APP = "storefront"  # an app no other test releases: the session's Prefect server is shared
TAG = "7.3.0"
APPROVER = "ops@acme"
COMMENT = "approved in the browser"
# What the run's log says, as a person reads it in the Logs tab (the stages' and the flow's own lines).
STORY = [
    re.compile(rf"apps/{APP} .*feeds|feeds .*{APP}"),
    re.compile(r"opened PR #\d+ for dev|PR #\d+ for dev on promote/"),
    re.compile(r"PR #\d+ for dev merged as [0-9a-f]{8}"),
    re.compile(r"Flux apps-dev healthy on [0-9a-f]{8}"),
    re.compile(r"waiting for approval of PR #\d+ for prod"),
    re.compile(rf"approved by {re.escape(APPROVER)}|approve.* by {re.escape(APPROVER)}"),
    re.compile(r"promoted through dev -> qa -> prod"),
]
DOCS = Path(__file__).resolve().parents[2] / "docs"
# Chromium on a machine without network: no sandbox (root in CI), no GPU, and none of its background calls.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


CHROMIUM = chromium_path()
# Decided at collection, before any fixture starts a server: what is missing, said plainly.
MISSING = PLAYWRIGHT_MISSING or (
    None
    if CHROMIUM
    else "Chromium is not installed (no `chromium` on PATH nor /usr/bin/chromium): apt-get install chromium"
)
pytestmark = [pytest.mark.timeout(600), pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


@pytest.fixture(scope="module")
def chromium() -> str:
    assert CHROMIUM is not None, MISSING
    return CHROMIUM


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def stack(prefect_api: PrefectServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("browser-stack")
    with promoter_stack(
        root, scenario={"default": {"delay": 0.2}}, prefect=prefect_api, poll_interval=0.2, sweep_seconds=10
    ) as running:
        files = {
            f"apps/{env}/{APP}.yaml": DEPLOYMENT.format(
                group="apps", app=APP, registry="ghcr.io/acme", tag="1.0"
            ).encode()
            for env in ("dev", "qa", "prod")
        }
        running.sandbox.forge.commit_files(running.repo, "main", files, f"Add {APP}")
        yield running
        assert running.sandbox.violations() == []


def screenshot_path(tmp_path: Path, name: str = "approval-page.png") -> Path:
    """docs/ only when asked for (PROMOTER_SCREENSHOTS=1), so a test run leaves the git tree clean."""
    return DOCS / name if os.environ.get("PROMOTER_SCREENSHOTS") == "1" else tmp_path / name


def form_field(dialog: Locator, label: str) -> Locator:
    """One property of the schema form. Its <label for=...> names no element, so `get_by_label` finds nothing:
    the property is the block that holds the label's exact text."""
    return dialog.locator(".schema-form-property").filter(has=dialog.page.get_by_text(label, exact=True))


def logged(page: Page, line: re.Pattern[str], scrolls: int = 30) -> Locator:
    """The log line matching `line`, scrolling the Logs tab down until it is loaded: the UI fetches a run's
    logs a page at a time as the list scrolls."""
    found = page.get_by_text(line).first
    for _ in range(scrolls):
        if found.count():
            break
        page.mouse.move(760, 1200)  # over the list, whose container scrolls, not the page
        page.mouse.wheel(0, 4000)
        page.wait_for_timeout(300)
    return found


def submit(page: Page, dialog: Locator, run_id: str, attempts: int = 3) -> None:
    """Press Submit until the server accepts the resume, then see the dialog close.

    On SQLite the server may answer 503 ("database is locked": the resume transaction read the run and
    another writer committed first). Prefect's Python client retries that; the UI says "Failed to resume
    flow run" and keeps the form filled in, so the person presses Submit again.
    """
    answers: list[str] = []
    for _ in range(attempts):
        with page.expect_response(
            lambda r: r.request.method == "POST" and r.url.endswith(f"/flow_runs/{run_id}/resume"),
            timeout=90_000,
        ) as response:
            dialog.get_by_role("button", name="Submit").click()
        answer = response.value
        if answer.ok and answer.json().get("status") == "ACCEPT":
            expect(dialog).to_be_hidden()
            return
        answers.append(f"{answer.status} {answer.text()[:300]}")
        print(f"the resume was refused ({answers[-1]}); pressing Submit again")
        if answer.status != 503:
            break
    raise AssertionError(f"the server did not resume the run from the UI: {answers}")


def test_a_person_approves_the_release_in_the_prefect_ui(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    home = httpx.get(stack.prefect.ui_url, timeout=30)
    assert home.status_code == 200 and "<html" in home.text.lower(), (
        f"the Prefect server at {stack.prefect.ui_url} serves no UI ({home.status_code}): "
        "is PREFECT_UI_ENABLED (PREFECT_SERVER_UI_ENABLED) false in the environment?"
    )
    assert stack.push(f"ghcr.io/acme/{APP}", TAG).status_code == 202
    waiting = stack.wait_for_run(
        lambda r: r["name"] == f"apps/{APP}:{TAG}" and r["state_type"] in {"PAUSED", *FINAL},
        timeout=240,
    )
    assert waiting["state_type"] == "PAUSED", (waiting["state_type"], waiting["state_name"])
    prod = [pr for _, pr in sorted(stack.repo.pulls.items()) if f"apps/{APP} " in pr.title][-1]
    assert prod.title.endswith(f"{TAG} to environment prod") and not prod.merged

    page = browser.new_page(viewport={"width": 1280, "height": 960})
    page.set_default_timeout(60_000)
    expect.set_options(timeout=30_000)  # a loaded machine renders slowly; 5 s is the default
    try:
        page.goto(stack.ui_link(waiting))
        expect(page.get_by_text(f"apps/{APP}:{TAG}", exact=True).first).to_be_visible(timeout=60_000)
        expect(page.get_by_text("Suspended", exact=True).first).to_be_visible()
        page.get_by_role("button", name="Resume").click()

        dialog = page.get_by_role("dialog")
        expect(dialog.get_by_text("Resume Flow Run", exact=True)).to_be_visible()
        # The description: the release, the PR link, the previous environment's health, the diff.
        expect(dialog.get_by_role("heading", name=f"Promote apps/{APP} {TAG} to prod")).to_be_visible()
        expect(dialog).to_contain_text(f"Release: {TAG}")
        link = dialog.get_by_role("link", name=f"#{prod.number}", exact=True)
        expect(link).to_have_attribute("href", f"{stack.sandbox.url}/acme/gitops/pull/{prod.number}")
        expect(dialog).to_contain_text("Previous environment: qa: healthy")
        expect(dialog).to_contain_text(f"+          image: ghcr.io/acme/{APP}:{TAG} #")  # the diff

        # The decision: required, no default, approve or reject.
        decision = form_field(dialog, "Decision")
        expect(decision).to_contain_text("approve merges the PR; reject ends the run")
        choice = decision.get_by_role("button").last  # the select; the first button is the field's menu
        expect(choice).to_have_text("")
        choice.focus()
        page.keyboard.press("ArrowDown")  # opens the list (a synthetic mouse click does not, here)
        expect(page.get_by_role("option")).to_have_text(["approve", "reject"])
        page.get_by_role("option", name="approve", exact=True).click()
        expect(choice).to_have_text("approve")
        form_field(dialog, "Approver").get_by_role("textbox").fill(APPROVER)
        form_field(dialog, "Comment (Optional)").get_by_role("textbox").fill(COMMENT)

        shot = screenshot_path(tmp_path)
        page.screenshot(path=str(shot))
        print(f"screenshot of the filled-in approval form: {shot}")

        submit(page, dialog, waiting["id"])

        done = stack.wait_for_run(
            lambda r: r["id"] == waiting["id"] and r["state_type"] in FINAL, f"app:apps/{APP}", timeout=180
        )
        assert done["state_type"] == "COMPLETED", (done["state_type"], done["state_name"], done.get("state"))
        assert stack.repo.pulls[prod.number].merged
        query = {"artifacts": {"flow_run_id": {"any_": [done["id"]]}}}
        artifacts = httpx.post(f"{stack.prefect.api_url}/artifacts/filter", json=query, timeout=30).json()
        record = " ".join(
            str(a["data"]) for a in artifacts if (a["key"] or "").startswith(f"approval-apps-{APP}-prod-")
        )
        assert APPROVER in record and COMMENT in record and TAG in record, record

        page.reload()  # and the person sees it done
        expect(page.get_by_text("Completed", exact=True).first).to_be_visible(timeout=60_000)
        assert page.url.endswith(f"/runs/flow-run/{done['id']}")

        # The Logs tab tells the release in words, stage by stage, not only Prefect's state changes.
        page.set_viewport_size({"width": 1280, "height": 1800})
        page.get_by_text("Logs", exact=True).first.click()  # the tabs are plain buttons, not role=tab
        for line in STORY:
            expect(logged(page, line)).to_be_visible()
        expect(page.get_by_text("Finished in state Completed()", exact=True)).to_have_count(0)
        logged(page, STORY[-3]).scroll_into_view_if_needed()  # the approval, in the middle of the picture
        logs = screenshot_path(tmp_path, "run-logs.png")
        page.screenshot(path=str(logs))
        print(f"screenshot of the run's Logs tab: {logs}")

        # The board artifact of the app: its latest version, every environment on the release.
        page.set_viewport_size({"width": 1280, "height": 800})
        page.goto(f"{stack.prefect.ui_url}/artifacts/key/promoter-apps-{APP}")  # its versions, newest first
        page.get_by_role("link", name=re.compile(r"^[0-9a-f]{8}$")).first.click()
        table = page.get_by_role("table").first
        expect(table).to_be_visible(timeout=60_000)
        for header in ("environment", "tag", "since", "PR", "approver", "Flux", "in flight"):
            expect(table.get_by_role("columnheader", name=header, exact=True)).to_be_visible()
        rows = table.get_by_role("row")
        expect(rows).to_have_count(4)  # the header and dev, qa, prod
        for env in ("dev", "qa", "prod"):
            expect(rows.filter(has_text=env).first).to_contain_text(TAG)
        expect(rows.filter(has_text="prod").first).to_contain_text(APPROVER)
        expect(rows.filter(has_text="prod").first).to_contain_text("healthy")
        board = screenshot_path(tmp_path, "board-artifact.png")
        page.screenshot(path=str(board))
        print(f"screenshot of the board artifact: {board}")
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"screenshot at the failure: {tmp_path / 'failure.png'}")
        raise
    finally:
        page.close()


POLICY_APP, POLICY_TAG = "giftcards", "2.0.0"
POLICY = "1 approval from alice in the forge; not by who pushed the release"


def test_the_form_names_the_approval_policy_in_both_of_prefects_uis(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    """Under an approval policy the form says that only the forge's word counts: in the classic UI, then
    behind "Switch to V2 UI", whose Resume sits in the run's menu and whose decision field is a select."""
    forge, repo = stack.sandbox.forge, stack.repo
    before = forge.git(repo).read_file(str(forge.resolve(repo, "main")), "gitops-promotion.yaml")
    assert before is not None
    policy = "    approval:\n      approvers: [alice]\n      separate_duties: true\n"
    files = {"gitops-promotion.yaml": (before.decode() + policy).encode()} | {
        f"apps/{env}/{POLICY_APP}.yaml": DEPLOYMENT.format(
            group="apps", app=POLICY_APP, registry="ghcr.io/acme", tag="1.0"
        ).encode()
        for env in ("dev", "qa", "prod")
    }
    forge.commit_files(repo, "main", files, "prod needs a verified approval")
    page = browser.new_page(viewport={"width": 1280, "height": 960})
    page.set_default_timeout(60_000)
    try:
        assert stack.push(f"ghcr.io/acme/{POLICY_APP}", POLICY_TAG).status_code == 202
        waiting = stack.wait_for_run(
            lambda r: (
                r["name"] == f"apps/{POLICY_APP}:{POLICY_TAG}" and r["state_type"] in {"PAUSED", *FINAL}
            ),
            timeout=240,
        )
        assert waiting["state_type"] == "PAUSED", (waiting["state_type"], waiting["state_name"])

        page.goto(stack.ui_link(waiting))  # the classic UI
        page.get_by_role("button", name="Resume").click()
        dialog = page.get_by_role("dialog")
        expect(dialog).to_contain_text(f"Approval policy: {POLICY}. The form alone does not approve.")
        dialog.get_by_role("button", name="Close", exact=True).click()
        expect(dialog).to_be_hidden()

        page.get_by_text("Switch to V2 UI", exact=True).click()
        expect(page).to_have_url(re.compile(r"/v2/"))
        page.goto(stack.ui_link(waiting).replace(stack.prefect.ui_url, f"{stack.prefect.ui_url}/v2", 1))
        expect(page.get_by_text(f"apps/{POLICY_APP}:{POLICY_TAG}", exact=True).first).to_be_visible()
        page.get_by_role("button", name="Open menu").first.click()
        page.get_by_role("menuitem", name="Resume").click()
        dialog = page.get_by_role("dialog")
        expect(
            dialog.get_by_role("heading", name=f"Promote apps/{POLICY_APP} {POLICY_TAG} to prod")
        ).to_be_visible()
        expect(dialog).to_contain_text(f"Approval policy: {POLICY}. The form alone does not approve.")
        dialog.get_by_role("button", name="Select").click()  # the decision: a select, with no default
        expect(page.get_by_role("option")).to_have_text(["approve", "reject"])
        page.keyboard.press("Escape")
        page.screenshot(path=str(tmp_path / "v2-approval-form.png"))
        dialog.get_by_role("button", name="Cancel").click()
        expect(dialog).to_be_hidden()
    except Exception:
        page.screenshot(path=str(tmp_path / "failure.png"), full_page=True)
        print(f"screenshot at the failure: {tmp_path / 'failure.png'}")
        raise
    finally:
        page.close()
        forge.commit_files(repo, "main", {"gitops-promotion.yaml": before}, "no policy")
    # From a shell, as a person would: Playwright's event loop is still running in this process.
    rejected = subprocess.run(
        [sys.executable, "-m", "promoter.cli", "approve", "--app", f"apps/{POLICY_APP}", "--reject"],
        env=stack.environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rejected.returncode == 0, rejected.stderr
    done = stack.wait_for_run(
        lambda r: r["id"] == waiting["id"] and r["state_type"] in FINAL, f"app:apps/{POLICY_APP}", timeout=180
    )
    assert done["state_name"] == "Rejected", done["state_name"]
