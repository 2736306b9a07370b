"""The Django catalog tests again, on PostgreSQL (the production database).

``test_django_catalog`` runs in a child pytest with ``DATABASE_URL`` pointing at
the local PostgreSQL server; pytest-django creates and drops ``test_<name>``.
Without a reachable server the test is skipped, except in CI (``CI=true``),
where PostgreSQL is part of the machine and its absence is a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
HOST, PORT, USER = "127.0.0.1", 5432, "postgres"
CHILD_TIMEOUT_S = 240
# A fresh test database; the project's addopts left out; skip reasons reported.
PYTEST_ARGS = "-m pytest -q -p no:cacheprovider --create-db -o addopts= -rs"


def _require_postgres() -> None:
    try:
        with psycopg.connect(
            host=HOST, port=PORT, user=USER, dbname="postgres", connect_timeout=3
        ) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        reason = f"PostgreSQL is not reachable at {USER}@{HOST}:{PORT}: {exc}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason} (CI needs it: start it before the tests)")
        pytest.skip(reason)


def test_django_catalog_on_postgres() -> None:
    _run_on_postgres("tests/storage/test_django_catalog.py")


def test_lifecycle_on_postgres() -> None:
    _run_on_postgres(
        "tests/storage/test_lifecycle.py",
        "tests/storage/test_compaction.py",
        "tests/storage/test_deletion_lifecycle.py",
    )


def _run_on_postgres(*test_files: str) -> None:
    _require_postgres()
    database = f"s2_catalog_test_{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{USER}@{HOST}:{PORT}/{database}",
        "S2_EXPECT_DB_VENDOR": "postgresql",
    }
    child = subprocess.run(
        [sys.executable, *PYTEST_ARGS.split(), *test_files],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    output = child.stdout + child.stderr
    assert child.returncode == 0, output
    summary = output.strip().splitlines()[-1]
    assert re.search(r"\b\d+ passed\b", summary), output
    # Every test ran on PostgreSQL, including those that SQLite has to skip.
    assert "skipped" not in summary and "failed" not in summary, output
