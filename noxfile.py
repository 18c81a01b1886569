"""Sessions: run (the main job), tests, lint, typecheck, bench.

Each session installs the harness (editable: the guest boots the very files of this
checkout) and lets ``harness doctor --install`` bring in the host packages.
"""

from __future__ import annotations

import os

import nox
import nox.command

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


def _install(session: nox.Session, *extra: str) -> None:
    session.install("-e", ".", *extra)
    if os.environ.get("MNH_SKIP_DOCTOR") != "1":
        session.run("harness", "doctor", "--install")


@nox.session(python=PYTHON)
def run(session: nox.Session) -> None:
    """The main job: the bundled series built and booted (watch_queue scenarios), the
    same scenarios on the newest prebuilt Debian kernel (upstream fanotify mount
    events), and one table of both. ``nox -s run -- DIR`` puts the results under DIR."""
    _install(session)
    root = session.posargs[0] if session.posargs else "results"
    failed = []
    for backend, kernel in (("watch-queue", "build"), ("fanotify", "debian")):
        try:   # both designs run even when the first has failures
            session.run("harness", "run", "--kernel", kernel, "--backend", backend,
                        "--results", f"{root}/{backend}", success_codes=[0, 4])
        except nox.command.CommandFailed:
            failed.append(backend)
    session.run("harness", "compare", f"{root}/watch-queue", f"{root}/fanotify")
    if failed:
        session.error(f"not every scenario passed: {', '.join(failed)}; see {root}/*/")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The whole suite: unit tests and the end-to-end tests on real guests."""
    _install(session, "pytest>=8")
    session.run("pytest", "--e2e", "-ra", "--durations=20",
                "--junitxml=results/pytest-junit.xml", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6")
    session.run("ruff", "check", "harness", "guest-tests", "bench", "tests", "noxfile.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".", "mypy>=1.11", "pytest>=8", "nox", "types-paramiko",
                    "types-pexpect")
    session.run("mypy", "--strict", "harness", "guest-tests/mnh_guest", "bench")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Speed figures, written to bench/results.json."""
    _install(session)
    session.run("python", "-m", "bench", "--out", "bench/results.json",
                *session.posargs)
