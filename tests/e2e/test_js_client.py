"""Sessions through the official TypeScript client (``@s2-dev/streamstore`` from npm).

The client's own code runs under Node against the shared server: its "fetch"
transport (HTTP/1.1: unary appends, SSE reads) and its "s2s" transport (HTTP/2
append and read sessions). The scenarios are in ``js/sessions.test.mjs``; the
npm packages are installed from the committed lock file on first use.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

JS_DIR = Path(__file__).with_name("js")
NODE_TIMEOUT_S = 300
# Six scenarios per transport, plus one s2s session test per compression.
EXPECTED_TESTS = 6 * 2 + 2

_TAP_RESULT = re.compile(r"^\s*(ok|not ok) \d+ - (.*)$")


def _npm_install() -> None:
    installed = JS_DIR / "node_modules" / ".package-lock.json"
    lock = JS_DIR / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    assert npm, "npm is required for the TypeScript client tests"
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"], cwd=JS_DIR, check=True, capture_output=True
    )


@pytest.fixture(scope="module")
def js_results(server_url: str) -> tuple[dict[str, bool], str]:
    _npm_install()
    basin = f"js-client-{uuid.uuid4().hex[:12]}"
    response = httpx.post(f"{server_url}/v1/basins", json={"basin": basin})
    assert response.status_code == 201, response.text
    env = {
        **os.environ,
        "S2_ACCOUNT_ENDPOINT": server_url,
        "S2_BASIN_ENDPOINT": server_url,
        "S2_ACCESS_TOKEN": "ignored",
        "S2_TEST_BASIN": basin,
    }
    proc = subprocess.run(
        ["node", "--test", "--test-reporter=tap", "sessions.test.mjs"],
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_S,
    )
    results: dict[str, bool] = {}
    for line in proc.stdout.splitlines():
        match = _TAP_RESULT.match(line)
        if match and match.group(2) != "the official TypeScript client":
            results[match.group(2)] = match.group(1) == "ok"
    return results, proc.stdout + proc.stderr


def test_every_scenario_passes_over_both_transports(
    js_results: tuple[dict[str, bool], str],
) -> None:
    results, output = js_results
    failed = [name for name, passed in results.items() if not passed]
    assert not failed, output
    assert len(results) == EXPECTED_TESTS, output
    for transport in ("fetch", "s2s"):
        assert sum(name.endswith(f"({transport})") for name in results) == 6
