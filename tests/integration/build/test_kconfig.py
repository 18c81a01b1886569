"""Kconfig fragments: parsing, merging, checking, and explaining dropped options."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.build import kconfig
from harness.build.kconfig import Dropped, Fragment, KconfigIndex
from harness.errors import ConfigError

FAKELINUX = Path(__file__).resolve().parents[2] / "fakelinux"
REPO_FRAGMENTS = Path(__file__).resolve().parents[3] / "kernel-config"


def frag(name: str, text: str) -> Fragment:
    return Fragment(name, tuple(kconfig.parse_config(text).items()))


def test_parse_config_values_and_unset() -> None:
    text = ("# a comment\n\nCONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\n"
            'CONFIG_D="quoted value"\nCONFIG_E=-1\nCONFIG_F=0x10\n')
    assert kconfig.parse_config(text) == {"A": "y", "B": "m", "C": "n",
                                          "D": '"quoted value"', "E": "-1", "F": "0x10"}


def test_parse_config_rejects_typo_with_line_number() -> None:
    with pytest.raises(ConfigError, match=r"frag:2: cannot parse 'CONFIG_B y'"):
        kconfig.parse_config("CONFIG_A=y\nCONFIG_B y\n", origin="frag")


def test_merge_later_fragment_overrides() -> None:
    base = frag("base", "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\n")
    debug = frag("debug", "# CONFIG_A is not set\nCONFIG_C=y\nCONFIG_D=30\n")
    merged = kconfig.merge([base, debug])
    assert merged == {"B": "y", "A": "n", "C": "y", "D": "30"}
    # The override sits where the overriding fragment put it.
    assert list(merged) == ["B", "A", "C", "D"]
    assert kconfig.merge([debug, base])["A"] == "y"


def test_render_round_trips() -> None:
    options = {"A": "y", "B": "n", "C": '"x"'}
    assert kconfig.render(options) == 'CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x"\n'
    assert kconfig.parse_config(kconfig.render(options)) == options


def test_requirement_fragment_forms() -> None:
    f = kconfig.requirement_fragment(["CONFIG_A=y", "B", "C=m", "# CONFIG_D is not set"])
    assert dict(f.options) == {"A": "y", "B": "y", "C": "m", "D": "n"}


def test_check_finds_every_dropped_option() -> None:
    requested = {"A": "y", "B": "n", "C": "n", "D": "30", "E": "y"}
    final = {"A": "y", "B": "y", "D": "120"}  # C absent: satisfied; E absent: dropped
    assert kconfig.check(requested, final) == [Dropped("B", "n", "y"),
                                               Dropped("D", "30", "120"),
                                               Dropped("E", "y", "n")]


def test_load_fragment_by_name_and_unknown_name() -> None:
    assert dict(kconfig.load_fragment("base").options)["WATCH_QUEUE"] == "y"
    with pytest.raises(ConfigError, match=r"known fragments: .*base"):
        kconfig.load_fragment("no-such-fragment")


@pytest.mark.parametrize("path", sorted(REPO_FRAGMENTS.glob("*.config")), ids=lambda p: p.name)
def test_repository_fragments_parse(path: Path) -> None:
    assert kconfig.parse_config(path.read_text(), origin=str(path))


def test_base_fragment_has_no_modules() -> None:
    base = dict(kconfig.load_fragment("base").options)
    assert base.get("MODULES", "n") == "n"


KCONFIG = "".join(line + "\n" for line in [
    'menu "Outer"',
    "\tdepends on NET",
    "",
    "config A",
    '\tbool "A"',
    "\tdepends on B && \\",
    "\t\tC",
    "\tselect D",
    "\thelp",
    "\t  config NOT_A_SYMBOL in help text",
    "\t  depends on NOT_A_DEPENDENCY",
    "",
    "config D",
    "\tbool",
    "",
    "if E",
    "config F",
    "\ttristate",
    "endif",
    "",
    "endmenu",
    "",
    "choice",
    '\tprompt "pick"',
    "config G1",
    '\tbool "g1"',
    "config G2",
    '\tbool "g2"',
    "endchoice",
    "",
])


def test_parse_kconfig_blocks_ifs_menus_help() -> None:
    defs = {d.symbol: d for d in kconfig.parse_kconfig(KCONFIG, "Kconfig")}
    assert set(defs) == {"A", "D", "F", "G1", "G2"}
    assert defs["A"].depends == ["NET", "B && C"]
    assert defs["A"].selects == ["D"]
    assert defs["A"].has_prompt and defs["A"].where == "Kconfig:4"
    assert defs["F"].depends == ["NET", "E"] and not defs["F"].has_prompt
    assert defs["G1"].in_choice and defs["G2"].in_choice


@pytest.mark.parametrize(("expr", "value"), [
    ("A", 2), ("B", 0), ("M", 1), ("A && B", 0), ("A || B", 2), ("!B", 2), ("!M", 1),
    ("A && (B || M)", 1), ("X = 30", 2), ("X != 30", 0), ("X >= 20", 2), ("X < 20", 0),
    ('S = "abc"', 2), ("Z = n", 2), ("", 2),
])
def test_evaluate(expr: str, value: int) -> None:
    values = {"A": "y", "B": "n", "M": "m", "X": "30", "S": '"abc"'}
    assert kconfig.evaluate(expr, values) == value


def test_explain_names_the_unmet_dependency() -> None:
    index = KconfigIndex(kconfig.parse_kconfig(KCONFIG, "Kconfig"))
    final = {"NET": "y", "B": "y", "C": "n"}
    why = kconfig.explain(Dropped("A", "y", "n"), index, final)
    assert why == "unmet dependency C [C=n] (Kconfig:4)"
    why = kconfig.explain(Dropped("F", "y", "n"), index, {})
    assert "NET [NET=n]" in why and "E [E=n]" in why


def test_explain_unknown_symbol_selected_and_choice() -> None:
    index = KconfigIndex(kconfig.parse_kconfig(KCONFIG, "Kconfig"))
    assert "no such symbol" in kconfig.explain(Dropped("NOPE", "y", "n"), index, {})
    assert kconfig.explain(Dropped("D", "n", "y"), index, {"A": "y", "NET": "y"}) == \
        "selected by CONFIG_A"
    assert "choice" in kconfig.explain(Dropped("G1", "y", "n"), index, {"NET": "y"})


def test_index_of_fake_tree_skips_help_text() -> None:
    index = KconfigIndex.from_tree(FAKELINUX)
    assert "NOT_A_SYMBOL" not in index.by_symbol
    assert index.by_symbol["KEY_NOTIFICATIONS"][0].depends == ["KEYS && WATCH_QUEUE"]
    assert index.by_symbol["NFS_FS"][0].depends == ["NET"]


def test_verify_lists_all_dropped_with_reasons(tmp_path: Path) -> None:
    dotconfig = tmp_path / ".config"
    dotconfig.write_text("CONFIG_KEYS=y\n# CONFIG_WATCH_QUEUE is not set\n"
                         "# CONFIG_KEY_NOTIFICATIONS is not set\n")
    requested = {"KEYS": "y", "KEY_NOTIFICATIONS": "y", "MOUNT_NOTIFICATIONS": "y",
                 "MISSPELT_OPTION": "y"}
    with pytest.raises(ConfigError) as info:
        kconfig.verify(requested, dotconfig, FAKELINUX, ["base", "mount-notify"])
    message = str(info.value)
    assert "3 option(s)" in message
    assert ("CONFIG_KEY_NOTIFICATIONS (wanted =y, got not set): unmet dependency "
            "WATCH_QUEUE [WATCH_QUEUE=n]") in message
    assert "CONFIG_MOUNT_NOTIFICATIONS" in message and "fs/Kconfig" in message
    assert "CONFIG_MISSPELT_OPTION (wanted =y, got not set): no such symbol" in message
    assert info.value.artifacts == dotconfig


def test_make_config_commands() -> None:
    cmds = kconfig.make_config_commands(["make", "O=/o"], Path("/o/all"))
    assert cmds == [["make", "O=/o", "KCONFIG_ALLCONFIG=/o/all", "allnoconfig"],
                    ["make", "O=/o", "olddefconfig"]]
