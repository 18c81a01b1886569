"""Sessions: run (the main job), tests, lint, typecheck, bench.

Each session installs the harness (editable: the guest boots the very files of this
checkout) and lets ``harness doctor --install`` bring in the host packages.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


def _install(session: nox.Session, *extra: str) -> None:
    session.install("-e", ".", *extra)
    if os.environ.get("MNH_SKIP_DOCTOR") != "1":
        session.run("harness", "doctor", "--install")


@nox.session(python=PYTHON)
def run(session: nox.Session) -> None:
    """The main job: the scenarios on the prebuilt kernel (fanotify mount events)."""
    _install(session)
    results = session.posargs[0] if session.posargs else "results/fanotify"
    session.run("harness", "run", "--kernel", "debian", "--backend", "fanotify",
                "--results", results)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite: unit tests and the end-to-end tests on real guests."""
    _install(session, "pytest>=8")
    session.run("pytest", "-ra", "--durations=20", "--junitxml=results/pytest-junit.xml",
                *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "harness", "guest-tests", "tests", "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".", "mypy>=1.11", "pytest>=8", "nox", "types-paramiko",
                    "types-pexpect")
    session.run("mypy", "--strict", "harness", "guest-tests/mnh_guest")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Speed figures, written to bench/results.json."""
    _install(session)
    session.run("python", "-m", "harness.bench", "--out", "bench/results.json",
                *session.posargs)
