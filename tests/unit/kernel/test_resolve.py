"""harness.kernel.resolve: apt mirror parsing, Debian kernel selection, resolve, bzImage release."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import ConfigError, KernelFetchError
from harness.kernel import debian, image, resolve


@pytest.mark.parametrize(("text", "uri"), [
    ("deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
     "http://mirror.example/debian bookworm main\n", "http://mirror.example/debian"),
    ("deb http://mirror.example/debian/ trixie main contrib\n", "http://mirror.example/debian/"),
    ("# deb http://old.example/debian sid main\n"
     "deb http://security.example/debian-security bookworm-security main\n"
     "deb http://mirror.example/debian bookworm-security main\n"
     "deb-src http://src.example/debian bookworm main\n"
     "deb https://download.docker.com/linux/debian bookworm stable\n"
     "deb [arch=amd64 trusted=yes] http://mirror.example/debian bookworm-updates main\n",
     "http://mirror.example/debian"),
    ("deb http://ppa.example/ubuntu noble main\n", None),
    ("deb http://mirror.example/debian\n", None),     # no suite
    ("", None),
], ids=["signed-by", "trailing-slash", "skips-others", "ubuntu", "no-suite", "empty"])
def test_parse_mirror_one_line(text: str, uri: str | None) -> None:
    assert debian.parse_mirror(text, deb822=False) == uri


def test_parse_mirror_deb822() -> None:
    text = textwrap.dedent("""\
        Types: deb
        URIs: http://security.example/debian-security
        Suites: trixie-security
        Components: main

        Types: deb
        URIs: https://download.docker.com/linux/debian
        Suites: trixie
        Components: stable

        Types: deb
        # URIs: http://commented.example/debian
        URIs: http://mirror.example/debian
        Suites: trixie trixie-updates
        Components: main
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
        """)
    assert debian.parse_mirror(text, deb822=True) == "http://mirror.example/debian"


def test_parse_mirror_deb822_security_only_and_third_party() -> None:
    text = textwrap.dedent("""\
        Types: deb
        URIs: http://mirror.example/debian
        Suites: trixie-security

        Types: deb
        URIs: https://pkg.example.com/apt
        Suites: stable
        Components: main

        Types: deb
        URIs: https://download.docker.com/linux/debian
        Suites: trixie
        Components: stable
        """)
    assert debian.parse_mirror(text, deb822=True) is None


def stanza(name: str, version: str) -> str:
    return (f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n"
            f"Description: kernel\n a continuation line: with a colon\n"
            f"Filename: pool/main/l/linux/{name}_{version}_amd64.deb\nSize: 123\n")


PACKAGES = "\n".join([
    stanza("linux-binary-7.2.13+deb13-amd64", "7.2.13-1"),
    stanza("linux-modules-7.2.13+deb13-amd64", "7.2.13-1"),
    stanza("linux-binary-7.3.4+deb13-amd64", "7.3.4-1"),
    stanza("linux-modules-7.3.4+deb13-amd64", "7.3.4-1"),
    stanza("linux-binary-7.3.4+deb13-rt-amd64", "7.3.4-1"),
    stanza("linux-modules-7.3.4+deb13-rt-amd64", "7.3.4-1"),
    stanza("linux-binary-7.3.4+deb13-cloud-amd64", "7.3.4-1"),
    stanza("linux-modules-7.3.4+deb13-cloud-amd64", "7.3.4-1"),
    stanza("linux-binary-7.4.0+deb13-amd64", "7.4.0-1"),      # no modules package
    stanza("linux-image-6.16.12+deb13-amd64-unsigned", "6.16.12-1~bpo13+1"),
    stanza("linux-image-6.16.12+deb13-amd64", "6.16.12-1~bpo13+1"),   # signed: not used
    stanza("linux-image-6.12.38+deb13-amd64-unsigned", "6.12.38-1"),  # < 6.15
    stanza("linux-image-6.1.0-28-amd64-unsigned", "6.1.123-1"),       # < 6.15
    stanza("linux-image-amd64", "7.3.4-1"),
    stanza("linux-binary-7.3.4+deb13-amd64", "7.3.3-9"),      # later suite: first one wins
])


def test_parse_packages_fields() -> None:
    st = list(debian.parse_packages(stanza("linux-image-amd64", "1.0")))
    assert st == [{"Package": "linux-image-amd64", "Version": "1.0",
                   "Filename": "pool/main/l/linux/linux-image-amd64_1.0_amd64.deb",
                   "Size": "123"}]
    assert list(debian.parse_packages("\n\nDescription: x\n\n")) == []


def test_candidates() -> None:
    cands = debian.candidates(debian.parse_packages(PACKAGES))
    assert [(c.name, c.version) for c in cands] == [
        ("linux-binary-7.3.4+deb13-amd64", "7.3.4-1"),
        ("linux-binary-7.2.13+deb13-amd64", "7.2.13-1"),
        ("linux-image-6.16.12+deb13-amd64-unsigned", "6.16.12-1~bpo13+1"),
    ]
    top = cands[0]
    assert top.release == "7.3.4+deb13-amd64"
    assert top.upstream == (7, 3, 4)
    assert top.companions == ("linux-modules-7.3.4+deb13-amd64",)
    assert cands[2].companions == ()
    assert cands[2].release == "6.16.12+deb13-amd64"


def test_select() -> None:
    cands = debian.candidates(debian.parse_packages(PACKAGES))
    assert debian.select(cands, None).upstream == (7, 3, 4)
    assert debian.select(cands, "").upstream == (7, 3, 4)
    assert debian.select(cands, "7.2.13").name == "linux-binary-7.2.13+deb13-amd64"
    assert debian.select(cands, "6.16.12+deb13-amd64").upstream == (6, 16, 12)
    assert debian.select(cands, "7.2.13-1").upstream == (7, 2, 13)
    with pytest.raises(KernelFetchError) as exc:
        debian.select(cands, "9.9")
    msg = str(exc.value)
    assert "'9.9'" in msg
    assert "7.3.4, 7.2.13, 6.16.12" in msg
    assert "debian:7.3.4" in msg


def test_select_without_candidates() -> None:
    with pytest.raises(KernelFetchError, match="--refresh"):
        debian.select([], None)


def test_resolve_nonexistent_path(tmp_path: Path) -> None:
    with pytest.raises(KernelFetchError, match="does not exist"):
        resolve.kernel(str(tmp_path / "nope"))


def test_resolve_build_directory(tmp_path: Path) -> None:
    (tmp_path / "bzImage").write_bytes(bzimage("6.12.0-mnh (b@h) #1"))
    (tmp_path / "vmlinux").write_bytes(b"\x7fELF")
    k = resolve.kernel(str(tmp_path))
    assert k.source == "build"
    assert k.image == tmp_path / "bzImage"
    assert k.release == "6.12.0-mnh"
    assert k.vmlinux == tmp_path / "vmlinux"
    assert k.metadata is None


def test_resolve_kernel_tree_and_image_file(tmp_path: Path) -> None:
    img = tmp_path / "arch" / "x86" / "boot" / "bzImage"
    img.parent.mkdir(parents=True)
    img.write_bytes(bzimage("6.12.0-tree (b@h) #1"))
    k = resolve.kernel(str(tmp_path))
    assert (k.source, k.image, k.release, k.vmlinux) == ("tree", img, "6.12.0-tree", None)
    f = resolve.kernel(str(img))
    assert (f.source, f.image) == ("path", img.resolve())


@pytest.mark.parametrize("content", [b"root:x:0:0:root:/root:/bin/bash\n", b"", b"MZ" + bytes(600)])
def test_a_file_that_is_not_a_kernel_is_refused_before_boot(tmp_path: Path,
                                                            content: bytes) -> None:
    f = tmp_path / "passwd"
    f.write_bytes(content)
    with pytest.raises(KernelFetchError, match=r"not a kernel image.*HdrS.*ELF"):
        resolve.kernel(str(f))


def test_a_vmlinux_is_a_kernel(tmp_path: Path) -> None:
    f = tmp_path / "vmlinux"
    f.write_bytes(b"\x7fELF" + bytes(1000))
    assert image.kind_of(f) == "vmlinux"
    assert resolve.kernel(str(f)).source == "path"


def test_resolve_directory_without_kernel(tmp_path: Path) -> None:
    with pytest.raises(KernelFetchError, match="without a kernel image"):
        resolve.kernel(str(tmp_path))


def bzimage(version: str, offset: int = 0x3000) -> bytes:
    head = bytearray(offset + 0x400)
    head[0x202:0x206] = b"HdrS"
    head[0x20E:0x210] = (offset - 0x200).to_bytes(2, "little")
    v = version.encode() + b"\0"
    head[offset:offset + len(v)] = v
    return bytes(head)


def test_release_of(tmp_path: Path) -> None:
    p = tmp_path / "bzImage"
    p.write_bytes(bzimage("6.12.0-test (builder@host) #1 SMP PREEMPT_DYNAMIC"))
    assert image.release_of(p) == "6.12.0-test"


@pytest.mark.parametrize("data", [
    b"",                                         # empty
    b"\0" * 0x1000,                              # no HdrS magic
    bzimage("6.1")[:0x3000],                     # offset past the end of the file
    bzimage("6.1")[:0x3000] + b"6.1x",          # no terminating NUL
], ids=["empty", "no-magic", "offset-past-end", "no-nul"])
def test_release_of_bad_images(tmp_path: Path, data: bytes) -> None:
    p = tmp_path / "img"
    p.write_bytes(data)
    assert image.release_of(p) == ""
    assert image.release_of(tmp_path / "missing") == ""


def test_build_spec_takes_series_and_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str | None, str | None]] = []
    monkeypatch.setattr(resolve, "build_kernel",
                        lambda series, upto=None: calls.append((series, upto)))
    for spec in ("build", "build:s", "build@posted", "build:s@3"):
        resolve.kernel(spec)
    assert calls == [(None, None), ("s", None), (None, "posted"), ("s", "3")]


def test_posted_table_of_the_bundled_series() -> None:
    from harness.kernel import abi

    posted = abi.posted(abi.DEFAULT_SERIES)
    assert posted.patches == 3 and "bad-input" in posted.crashes
    with pytest.raises(ConfigError, match="patch count"):
        resolve.build_kernel(None, "three")


def test_series_of_a_kernel_built_from_a_vanished_copy(tmp_path: Path) -> None:
    """A build made from a temporary copy of a bundled series (the bisect tests and
    benches make those) still names a series the guest can load once the copy is gone."""
    from harness.kernel import abi

    meta = tmp_path / "metadata.json"
    meta.write_text('{"series": {"name": "mount-notify-v5", "source": "/nonexistent/s"}}')
    assert abi.series_of_kernel(meta) == "mount-notify-v5"
    meta.write_text(f'{{"series": {{"name": "x", "source": "{tmp_path}"}}}}')
    assert abi.series_of_kernel(meta) == str(tmp_path)
