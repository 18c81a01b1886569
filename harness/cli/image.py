"""``harness image build|check``: Debian guest images for image mode."""

from __future__ import annotations

import argparse
import json
import sys

from harness.vm.image import build, check, resolve


def _main(a: argparse.Namespace) -> int:
    if a.image_command == "build":
        img = build(a.suite, force=a.force)
        print(img.directory)
        print(f"host key {img.host_fingerprint}", file=sys.stderr)
        return 0
    img = resolve(a.image)
    check(img.path)
    print(json.dumps({**img.to_json(), "ok": True}, indent=2))
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("image", help="build and check Debian guest images (image mode)")
    isub = p.add_subparsers(dest="image_command", required=True)
    b = isub.add_parser("build", help="build the guest image into the cache; prints its "
                        "directory")
    b.add_argument("--suite", default=None, help="Debian suite (default: the recipe's, "
                   "bookworm)")
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    c = isub.add_parser("check", help="check an image without booting it")
    c.add_argument("image", help="image directory or suite name")
    p.set_defaults(func=_main)
