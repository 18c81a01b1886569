"""The patch step: load a series and apply it to a work tree, idempotently.

A series is one of:

- a directory with ``series.toml`` (``name``, ``[base]``, ``[series] format/patches``,
  ``[config] require``);
- a directory with a quilt ``series`` file (one patch per line, ``#`` comments, an
  optional ``-pN``);
- a directory of ``*.patch`` files in ``git format-patch`` form, applied in name order;
- an mbox file (as ``b4 am`` writes), split with ``git mailsplit``.

Mail-form patches go through ``git am`` (author, message and all); plain diffs (quilt)
through ``git apply --index`` and a commit named after the file.  Before each patch,
``git apply --reverse --check`` decides whether it is already applied (drgn's vmtest
does the same), so applying twice, or onto a tree that already has some of the series,
is harmless.
"""

from __future__ import annotations

import hashlib
import logging
import re
import tempfile
import time
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness import paths
from harness.build.proc import git, run
from harness.errors import PatchError

log = logging.getLogger("harness")

MAIL_FORMATS = ("format-patch", "mbox")
FORMATS = (*MAIL_FORMATS, "quilt")


@dataclass(frozen=True)
class PatchFile:
    path: Path
    strip: int = 1  # -pN
    mail: bool = True  # git am (mail with headers) rather than git apply (plain diff)


@dataclass(frozen=True)
class BaseSpec:
    """``[base]`` of series.toml: which Debian source package the series is based on."""

    package: str | None = None
    version: str | None = None
    tarball: Path | None = None


@dataclass(frozen=True)
class Series:
    name: str
    source: Path  # the directory or mbox file it was loaded from
    format: str
    patches: tuple[PatchFile, ...]
    base: BaseSpec = field(default_factory=BaseSpec)
    require: tuple[str, ...] = ()  # extra Kconfig lines ("CONFIG_X=y") the series needs

    def prefix(self, k: int) -> Series:
        """The series cut to its first ``k`` patches (``harness build --upto K``): the same
        name, so it shares the full series' work tree and object directory."""
        if self.format == "mbox":
            raise PatchError(f"--upto needs one file per patch, but {self.source} is an mbox; "
                             "split it first (`git mailsplit` or `b4 am -o DIR`).")
        if not 0 <= k <= len(self.patches):
            raise PatchError(f"--upto {k} is outside the series {self.name}, which has "
                             f"{len(self.patches)} patches; choose 0..{len(self.patches)}.")
        return replace(self, patches=self.patches[:k])

    def content_hash(self) -> str:
        """sha256 over the patches' bytes, in order, and the series' requirements."""
        h = hashlib.sha256()
        for p in self.patches:
            data = p.path.read_bytes()
            h.update(f"{p.path.name}\0{p.strip}\0{int(p.mail)}\0{len(data)}\0".encode())
            h.update(data)
        h.update("\0".join(self.require).encode())
        return h.hexdigest()


def resolve(name_or_path: str) -> Path:
    """``--series NAME`` is a directory under the repository's ``patches/``; anything with
    a slash, or an existing path, is taken as a path."""
    candidate = Path(name_or_path)
    if "/" in name_or_path or candidate.exists():
        return candidate.resolve()
    under = paths.data_dir("patches") / name_or_path
    if under.exists():
        return under
    known = sorted(p.name for p in paths.data_dir("patches").glob("*") if p.is_dir())
    raise PatchError(f"No series named {name_or_path!r} under {paths.data_dir('patches')} "
                     f"(known: {', '.join(known) or 'none'}); pass a directory or mbox path "
                     "to --series instead.")


def load(path: Path) -> Series:
    """Read a series from a directory (series.toml / quilt series / *.patch) or an mbox."""
    if path.is_file():
        return Series(name=path.stem, source=path, format="mbox",
                      patches=(PatchFile(path),))
    if not path.is_dir():
        raise PatchError(f"The series {path} does not exist; pass a directory of patches or "
                         "an mbox file to --series.")
    if (path / "series.toml").is_file():
        return _load_toml(path)
    if (path / "series").is_file():
        return _load_quilt(path)
    patches = sorted(path.glob("*.patch"))
    if not patches:
        raise PatchError(f"{path} holds no series.toml, no quilt series file and no *.patch "
                         "files; put the output of `git format-patch` there.")
    return Series(name=path.name, source=path, format="format-patch",
                  patches=tuple(PatchFile(p) for p in patches))


def _load_toml(path: Path) -> Series:
    toml_path = path / "series.toml"
    try:
        data = tomllib.loads(toml_path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise PatchError(f"{toml_path} is not valid TOML ({exc}); fix it.") from exc
    section = data.get("series", {})
    fmt = section.get("format", "format-patch")
    if fmt not in FORMATS:
        raise PatchError(f"{toml_path}: [series] format = {fmt!r} is not one of "
                         f"{', '.join(FORMATS)}; fix the file.")
    names = section.get("patches")
    files = sorted(path.glob("*.patch")) if names is None else [path / str(n) for n in names]
    missing = [str(f.name) for f in files if not f.is_file()]
    if missing:
        raise PatchError(f"{toml_path} lists patches that are not there: "
                         f"{', '.join(missing)}; fix [series] patches.")
    base = data.get("base", {})
    tarball = base.get("tarball")
    require = tuple(str(r) for r in data.get("config", {}).get("require", []))
    return Series(
        name=str(data.get("name", path.name)), source=path, format=fmt,
        patches=tuple(PatchFile(f, mail=fmt in MAIL_FORMATS) for f in files),
        base=BaseSpec(package=base.get("package"), version=base.get("version"),
                      tarball=Path(tarball) if tarball else None),
        require=require)


def parse_quilt_series(text: str, directory: Path) -> tuple[PatchFile, ...]:
    """The patches of a quilt ``series`` file: ``name [-pN]`` per line, ``#`` comments."""
    out = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, *opts = line.split()
        strip = 1
        for opt in opts:
            if m := re.fullmatch(r"-p(\d+)", opt):
                strip = int(m.group(1))
        out.append(PatchFile(directory / name, strip=strip, mail=False))
    return tuple(out)


def _load_quilt(path: Path) -> Series:
    patches = parse_quilt_series((path / "series").read_text(), path)
    missing = [p.path.name for p in patches if not p.path.is_file()]
    if missing:
        raise PatchError(f"{path / 'series'} lists patches that are not there: "
                         f"{', '.join(missing)}.")
    return Series(name=path.name, source=path, format="quilt", patches=patches)


_HAS_DIFF = re.compile(r"^(diff --git |--- \S|Index: )", re.MULTILINE)


def _split_mbox(mbox: Path, into: Path) -> list[PatchFile]:
    """One PatchFile per message of ``mbox`` that carries a diff (cover letters are not)."""
    run(["git", "mailsplit", "-o" + str(into), mbox])
    mails = sorted(into.iterdir())
    return [PatchFile(m) for m in mails
            if _HAS_DIFF.search(m.read_text(errors="replace"))]


def patch_hash(p: PatchFile) -> str:
    """What identifies one applied patch in a work tree's record of what it holds."""
    h = hashlib.sha256(f"{p.path.name}\0{p.strip}\0{int(p.mail)}\0".encode())
    h.update(p.path.read_bytes())
    return h.hexdigest()


def first_failure(output: str) -> str:
    """The first failing file/hunk in git am / git apply output, in a few words."""
    patterns = (
        r"error: patch failed: (\S+:\d+)",
        r"error: (\S+): patch does not apply",
        r"error: (\S+): does not exist in index",
        r"error: (\S+): already exists in (?:index|working directory)",
        r"(corrupt patch at line \d+)",
        r"(patch fragment without header at line \d+.*)",
        r"(Patch format detection failed\.)",
        r"(No valid patches in input.*)",
    )
    for pattern in patterns:
        if m := re.search(pattern, output):
            return m.group(1)
    lines = [line for line in output.splitlines() if line.strip()]
    return lines[0] if lines else "no output from git"


def is_applied(tree: Path, patch: PatchFile) -> bool:
    """True if ``patch`` is already in ``tree`` (its reverse applies cleanly)."""
    proc = git(tree, "apply", "--reverse", "--check", f"-p{patch.strip}", patch.path,
               check=False)
    return proc.returncode == 0


def apply_series(tree: Path, series: Series) -> list[str]:
    """Apply ``series`` to the git work tree ``tree``; return the names of patches applied
    (already-applied ones are skipped).  Raise PatchError on the first that fails."""
    applied: list[str] = []
    with tempfile.TemporaryDirectory(prefix="harness-mbox-") as tmp:
        patches: list[PatchFile] = []
        for p in series.patches:
            if series.format == "mbox":
                patches.extend(_split_mbox(p.path, Path(tmp)))
            else:
                patches.append(p)
        for number, p in enumerate(patches, 1):
            label = p.path.name if series.format != "mbox" else \
                f"{series.source.name} (message {number})"
            if is_applied(tree, p):
                log.info("patch %s: already applied, skipped", label)
                continue
            if p.mail:
                proc = git(tree, "am", "-q", "--no-gpg-sign", f"-p{p.strip}", p.path,
                           check=False)
            else:
                proc = git(tree, "apply", "--index", f"-p{p.strip}", p.path, check=False)
                if proc.returncode == 0:
                    proc = git(tree, "commit", "-q", "--no-verify", "-m", p.path.name,
                               check=False)
            if proc.returncode != 0:
                output = proc.stdout + proc.stderr
                if p.mail:
                    git(tree, "am", "--abort", check=False)
                raise PatchError(
                    f"Patch {label} ({p.path}) does not apply to the base of series "
                    f"{series.name}: {first_failure(output)}. {len(applied)} patch(es) "
                    "before it applied. Rebase the series onto this base (or pick the "
                    "base it was written for in series.toml [base]) and run the build "
                    "again; git's output is in the log.",
                    artifacts=_keep_log(series, label, output))
            log.info("patch %s: applied", label)
            applied.append(label)
    return applied


def _keep_log(series: Series, label: str, output: str) -> Path:
    logs = paths.cache_dir("logs")
    path = logs / f"patch-{series.name}-{time.strftime('%Y%m%dT%H%M%S')}.log"
    path.write_text(f"series: {series.source}\npatch: {label}\n\n{output}")
    return path
