"""The configure step: merge fragments, run allnoconfig + olddefconfig, verify.

Kconfig drops an option it cannot honour without a word (an unmet ``depends on``, a
misspelt or not-yet-existing symbol, a choice that went another way).  So after
configuring, every option asked for is looked up in the final ``.config``, and each one
that did not land is reported with the reason found in the Kconfig files: the
``depends on`` terms that are false, the enclosing ``if`` blocks, or "no such symbol".

Parsing, merging, checking and explaining are pure functions over text; only
:func:`configure` runs make.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness import paths
from harness.build.proc import run
from harness.errors import ConfigError

log = logging.getLogger("harness")

DEFAULT_FRAGMENTS = ("base", "mount-notify", "nfs")

_SET = re.compile(r"^CONFIG_([A-Za-z0-9_]+)=(.*)$")
_UNSET = re.compile(r"^# CONFIG_([A-Za-z0-9_]+) is not set$")


@dataclass(frozen=True)
class Fragment:
    name: str
    options: tuple[tuple[str, str], ...]  # (SYMBOL, value) in file order; "n" = not set


def parse_config(text: str, *, origin: str = "<config>") -> dict[str, str]:
    """``{SYMBOL: value}`` from .config-style text; ``# CONFIG_X is not set`` gives "n".

    Used for fragments and for the final .config alike.  Any other non-comment line is an
    error, so a typo (``CONFIG_FOO y``) does not silently do nothing.
    """
    options: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if m := _SET.match(line):
            options[m.group(1)] = m.group(2)
        elif m := _UNSET.match(line):
            options[m.group(1)] = "n"
        elif line and not line.startswith("#"):
            raise ConfigError(f"{origin}:{number}: cannot parse {raw!r}; write "
                              "CONFIG_FOO=y, CONFIG_FOO=value or '# CONFIG_FOO is not set'.")
    return options


def fragment_path(name: str) -> Path:
    """``debug`` -> ``kernel-config/debug.config``; a path is taken as it is."""
    if "/" in name or name.endswith(".config"):
        return Path(name)
    return paths.data_dir("kernel-config") / f"{name}.config"


def load_fragment(name: str) -> Fragment:
    path = fragment_path(name)
    try:
        text = path.read_text()
    except OSError as exc:
        known = sorted(p.stem for p in paths.data_dir("kernel-config").glob("*.config"))
        raise ConfigError(f"Cannot read config fragment {path} ({exc.strerror}); known "
                          f"fragments: {', '.join(known)}.") from exc
    return Fragment(name=name, options=tuple(parse_config(text, origin=str(path)).items()))


def requirement_fragment(lines: Iterable[str], name: str = "series-require") -> Fragment:
    """A fragment from a series' ``[config] require`` list: ``CONFIG_X=y``, ``X=y`` or
    ``X`` (meaning ``=y``)."""
    options: list[tuple[str, str]] = []
    for line in lines:
        text = line.strip()
        if _UNSET.match(text):
            text = text.removeprefix("# ").removesuffix(" is not set") + "=n"
        text = text.removeprefix("CONFIG_")
        symbol, _, value = text.partition("=")
        options.append((symbol, value or "y"))
    return Fragment(name=name, options=tuple(options))


def merge(fragments: Sequence[Fragment]) -> dict[str, str]:
    """All fragments' options; a later fragment overrides an earlier one."""
    merged: dict[str, str] = {}
    for fragment in fragments:
        for symbol, value in fragment.options:
            merged.pop(symbol, None)  # keep the overriding fragment's position
            merged[symbol] = value
    return merged


def render(options: Mapping[str, str]) -> str:
    """.config-style text for ``options`` (the KCONFIG_ALLCONFIG file)."""
    return "".join(f"# CONFIG_{s} is not set\n" if v == "n" else f"CONFIG_{s}={v}\n"
                   for s, v in options.items())


@dataclass(frozen=True)
class Dropped:
    """An option asked for that is not in the final .config."""

    symbol: str
    wanted: str
    got: str  # "n" when absent or not set
    reason: str = ""

    def describe(self) -> str:
        got = "not set" if self.got == "n" else f"={self.got}"
        wanted = "not set" if self.wanted == "n" else f"={self.wanted}"
        text = f"CONFIG_{self.symbol} (wanted {wanted}, got {got})"
        return f"{text}: {self.reason}" if self.reason else text


def check(requested: Mapping[str, str], final: Mapping[str, str]) -> list[Dropped]:
    """The requested options that are not in ``final``.  Asking for "n" is satisfied by an
    absent symbol (one whose dependencies hide it)."""
    dropped = []
    for symbol, wanted in requested.items():
        got = final.get(symbol, "n")
        if got != wanted:
            dropped.append(Dropped(symbol, wanted, got))
    return dropped


# --- Kconfig dependency explanation --------------------------------------------------

@dataclass
class Definition:
    """One ``config SYMBOL`` block, as far as explaining a dropped option needs."""

    symbol: str
    where: str  # "file:line"
    depends: list[str] = field(default_factory=list)  # own "depends on" plus enclosing ifs
    selects: list[str] = field(default_factory=list)
    has_prompt: bool = False
    in_choice: bool = False


_BLOCK_START = re.compile(r"^(menuconfig|config)\s+([A-Za-z0-9_]+)\s*$")
_TYPE_PROMPT = re.compile(r'^(bool|tristate|string|int|hex)\s+"')


def _indent(line: str) -> int:
    return len(line.expandtabs(8)) - len(line.expandtabs(8).lstrip())


def parse_kconfig(text: str, filename: str) -> list[Definition]:
    """The ``config`` blocks of one Kconfig file, with the conditions of enclosing ``if``,
    ``menu`` and ``choice`` blocks folded into ``depends``."""
    definitions: list[Definition] = []
    # Each frame: (kind, conditions); conditions of a menu/choice grow while its header
    # is being read.
    stack: list[tuple[str, list[str]]] = []
    current: Definition | None = None
    header: list[str] | None = None  # the menu/choice whose attributes are being read
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        number = i + 1
        line = lines[i]
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1].rstrip() + " " + lines[i].strip()
        i += 1
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        word = stripped.split()[0]
        if m := _BLOCK_START.match(stripped):
            inherited = [c for _, conds in stack for c in conds]
            current = Definition(m.group(2), f"{filename}:{number}", depends=list(inherited),
                                 in_choice=any(kind == "choice" for kind, _ in stack))
            definitions.append(current)
            header = None
        elif word == "if":
            stack.append(("if", [stripped[2:].strip()]))
            current = header = None
        elif word in ("menu", "choice"):
            conds: list[str] = []
            stack.append((word, conds))
            current, header = None, conds
        elif word in ("endif", "endmenu", "endchoice"):
            if stack:
                stack.pop()
            current = header = None
        elif word in ("comment", "source", "mainmenu"):
            current = header = None
        elif stripped.startswith("depends on"):
            cond = stripped[len("depends on"):].strip()
            if current is not None:
                current.depends.append(cond)
            elif header is not None:
                header.append(cond)
        elif current is not None:
            if word == "select":
                current.selects.append(stripped.split()[1])
            elif _TYPE_PROMPT.match(stripped) or word == "prompt":
                current.has_prompt = True
            elif word in ("help", "---help---"):
                # Skip the help text: the lines indented deeper than "help" itself.
                indent = _indent(line)
                while i < len(lines) and (not lines[i].strip() or
                                          _indent(lines[i]) > indent):
                    i += 1
                current = None
    return definitions


class KconfigIndex:
    """Every ``config`` definition of a tree (x86 and architecture-independent files)."""

    def __init__(self, definitions: Iterable[Definition]) -> None:
        self.by_symbol: dict[str, list[Definition]] = {}
        for d in definitions:
            self.by_symbol.setdefault(d.symbol, []).append(d)

    @classmethod
    def from_tree(cls, srctree: Path) -> KconfigIndex:
        definitions: list[Definition] = []
        for dirpath, dirnames, filenames in os.walk(srctree):
            rel = Path(dirpath).relative_to(srctree)
            if rel.parts[:1] == ("arch",) and len(rel.parts) == 1:
                dirnames[:] = [d for d in dirnames if d in ("x86", "Kconfig")]
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            for name in filenames:
                if name.startswith("Kconfig"):
                    path = Path(dirpath) / name
                    definitions.extend(parse_kconfig(path.read_text(errors="replace"),
                                                     str(path.relative_to(srctree))))
        return cls(definitions)

    def selectors(self, symbol: str) -> list[str]:
        return sorted({d.symbol for defs in self.by_symbol.values() for d in defs
                       if symbol in d.selects})


def _tokens(expr: str) -> list[str]:
    return re.findall(r'"[^"]*"|&&|\|\||!=|<=|>=|[()!=<>]|[A-Za-z0-9_.$-]+', expr)


def evaluate(expr: str, values: Mapping[str, str]) -> int:
    """A Kconfig expression's tristate value (0 = n, 1 = m, 2 = y) given ``values``
    (symbol -> .config value; absent means n)."""
    tokens = _tokens(expr)
    pos = 0

    def value_of(token: str) -> str:
        if token.startswith('"'):
            return token[1:-1]
        if token in ("y", "m", "n"):
            return token
        if token in values:
            return values[token].strip('"')
        # An undefined word is a constant (a number); an unset symbol is n.
        return token if re.fullmatch(r"-?(0x)?[0-9a-fA-F]+", token) else "n"

    def tri(v: str) -> int:
        return {"y": 2, "m": 1}.get(v, 0)

    def primary() -> int:
        nonlocal pos
        token = tokens[pos] if pos < len(tokens) else ""
        pos += 1
        if token == "!":
            return 2 - primary()
        if token == "(":
            v = disjunction()
            pos += 1  # ")"
            return v
        if pos < len(tokens) and tokens[pos] in ("=", "!=", "<", ">", "<=", ">="):
            op, other = tokens[pos], tokens[pos + 1] if pos + 1 < len(tokens) else ""
            pos += 2
            a, b = value_of(token), value_of(other)
            if op in ("=", "!="):
                return 2 if (a == b) == (op == "=") else 0
            try:
                x, y = int(a, 0), int(b, 0)
            except ValueError:
                return 0
            ok = {"<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y}[op]
            return 2 if ok else 0
        return tri(value_of(token))

    def conjunction() -> int:
        nonlocal pos
        v = primary()
        while pos < len(tokens) and tokens[pos] == "&&":
            pos += 1
            v = min(v, primary())
        return v

    def disjunction() -> int:
        nonlocal pos
        v = conjunction()
        while pos < len(tokens) and tokens[pos] == "||":
            pos += 1
            v = max(v, conjunction())
        return v

    return disjunction() if tokens else 2


def _split_and(expr: str) -> list[str]:
    """Top-level ``&&`` terms of an expression."""
    terms, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and expr.startswith("&&", i):
            terms.append(expr[start:i].strip())
            start = i + 2
    terms.append(expr[start:].strip())
    return [t for t in terms if t]


def _annotate(term: str, values: Mapping[str, str]) -> str:
    symbols = [t for t in _tokens(term) if re.fullmatch(r"[A-Z][A-Z0-9_]*", t)]
    shown = ", ".join(f"{s}={values.get(s, 'n')}" for s in dict.fromkeys(symbols))
    if "||" in term and not (term.startswith("(") and term.endswith(")")):
        term = f"({term})"
    return f"{term} [{shown}]" if shown else term


def explain(dropped: Dropped, index: KconfigIndex, final: Mapping[str, str]) -> str:
    """Why ``dropped`` is not in the final configuration, in one sentence."""
    definitions = index.by_symbol.get(dropped.symbol)
    if not definitions:
        return ("no such symbol in this tree (misspelt, removed, or added by a patch that "
                "is not applied)")
    reasons = []
    for d in definitions:
        unmet = [_annotate(term, final) for cond in d.depends for term in _split_and(cond)
                 if evaluate(term, final) == 0]
        if unmet:
            reasons.append(f"unmet dependency {' && '.join(unmet)} ({d.where})")
    if reasons:
        return "; ".join(reasons)
    if dropped.wanted == "n":
        on = [s for s in index.selectors(dropped.symbol) if final.get(s, "n") != "n"]
        if on:
            return f"selected by {', '.join('CONFIG_' + s for s in on)}"
    if dropped.wanted == "m" and final.get("MODULES", "n") == "n":
        return "=m needs CONFIG_MODULES, which the fragments leave off; use =y"
    if any(d.in_choice for d in definitions):
        return f"a choice member; another option of the choice won ({definitions[0].where})"
    if not any(d.has_prompt for d in definitions):
        return (f"has no prompt, so only a default or a select can set it "
                f"({definitions[0].where})")
    return f"dependencies are met; check its range or value ({definitions[0].where})"


def verify(requested: Mapping[str, str], dotconfig: Path, srctree: Path,
           fragments: Sequence[str]) -> None:
    """Raise ConfigError naming every requested option missing from ``dotconfig``."""
    final = parse_config(dotconfig.read_text(), origin=str(dotconfig))
    dropped = check(requested, final)
    if not dropped:
        return
    index = KconfigIndex.from_tree(srctree)
    lines = [Dropped(d.symbol, d.wanted, d.got, explain(d, index, final)).describe()
             for d in dropped]
    raise ConfigError(
        f"{len(dropped)} option(s) asked for by the fragments ({', '.join(fragments)}) are "
        "not in the final .config:\n  " + "\n  ".join(lines) + "\nAdd the missing "
        "dependencies to a fragment, or drop the options; the generated config is kept.",
        artifacts=dotconfig)


def make_config_commands(make: Sequence[str], allconfig: Path) -> list[list[str]]:
    """``make ... allnoconfig KCONFIG_ALLCONFIG=FILE`` then ``make ... olddefconfig``."""
    return [[*make, f"KCONFIG_ALLCONFIG={allconfig}", "allnoconfig"],
            [*make, "olddefconfig"]]


def configure(make: Sequence[str], objdir: Path, srctree: Path,
              requested: Mapping[str, str], fragments: Sequence[str],
              env: Mapping[str, str] | None = None) -> Path:
    """Write ``objdir/.config`` for ``requested`` and verify it; return its path.

    Skipped when ``objdir`` already holds a verified .config for exactly these options,
    so a rebuild after touching a source file does not pay for configuration.
    """
    text = render(requested)
    allconfig = objdir / "harness-allconfig"
    dotconfig = objdir / ".config"
    stamp = objdir / "harness-configured"
    if dotconfig.exists() and stamp.exists() and stamp.read_text() == text:
        return dotconfig
    objdir.mkdir(parents=True, exist_ok=True)
    stamp.unlink(missing_ok=True)
    allconfig.write_text(text)
    for cmd in make_config_commands(make, allconfig):
        proc = run(cmd, check=False, env=env)
        if proc.returncode != 0:
            raise ConfigError(
                f"`{' '.join(cmd[-2:])}` failed in {objdir}: "
                f"{(proc.stderr or proc.stdout).strip()[-1500:]}\nFix the fragment (or the "
                "host's missing tool: flex, bison, bc, libelf-dev) and run again.",
                artifacts=objdir)
    verify(requested, dotconfig, srctree, fragments)
    stamp.write_text(text)
    return dotconfig
