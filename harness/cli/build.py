"""``harness build``: parse the command line into a BuildRequest and run the pipeline.

Prints the artifact directory (bzImage, vmlinux, config, build.log, metadata.json) on
stdout, so ``harness run --kernel "$(harness build ...)"`` composes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from harness.build import kconfig, pipeline
from harness.build.pipeline import BuildRequest
from harness.kernel.abi import DEFAULT_SERIES


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "build", help="build a patched kernel; prints its artifact directory",
        description="Build a kernel (Debian's linux-source, or --tree) with a patch series "
        "and Kconfig fragments; same inputs reuse the cached artifact.")
    p.add_argument("--series", metavar="NAME|PATH",
                   help="a series under patches/, or a directory of patches / an mbox file "
                   f"(default: {DEFAULT_SERIES}, unless --tree is given)")
    p.add_argument("--upto", metavar="K", type=int,
                   help="apply only the first K patches of the series (0: none)")
    p.add_argument("--tree", metavar="PATH", type=Path,
                   help="a clean kernel git tree to build instead of Debian's linux-source")
    p.add_argument("--config", metavar="FRAGMENT", action="append", dest="configs",
                   help="a fragment name in kernel-config/ (debug -> debug.config) or a path; "
                   f"repeatable, later ones override (default: "
                   f"{' '.join(kconfig.DEFAULT_FRAGMENTS)})")
    p.add_argument("--jobs", "-j", type=int, metavar="N", help="make -jN (default: nproc)")
    p.add_argument("--force", action="store_true",
                   help="rebuild even if a cached artifact exists")
    p.add_argument("--no-ccache", dest="ccache", action="store_false",
                   help="compile without ccache")
    p.set_defaults(func=main)


def from_args(args: argparse.Namespace) -> BuildRequest:
    """The frozen request for the library; the Namespace stops here."""
    # No --series and no --tree: the bundled series on its base, as `--kernel build` does.
    series = args.series or (None if args.tree is not None else DEFAULT_SERIES)
    return BuildRequest(series=series, tree=args.tree,
                        configs=tuple(args.configs or kconfig.DEFAULT_FRAGMENTS),
                        jobs=args.jobs, force=args.force, ccache=args.ccache,
                        upto=args.upto)


def main(args: argparse.Namespace) -> int:
    built = pipeline.build(from_args(args))
    print(built.directory)
    return 0
