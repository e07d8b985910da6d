"""Options that several commands share: how AsyncAPI 3 operations are read or written, and how
far ``$ref``s may lead."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from asyncapi_gw.model import PointOfView

__all__ = [
    "READ_HELP",
    "WRITE_HELP",
    "add_point_of_view",
    "add_ref_options",
    "point_of_view",
    "ref_policy",
]

READ_HELP = (
    "how the send/receive operations of an AsyncAPI 3 document read: 'application' (the "
    "specification's: receive = clients publish to the API) or 'client' (WSO2 API Manager "
    "4.7's: send = clients publish); default: WSO2's documents are recognised and read its way "
    "(with a warning), others as the specification says"
)
WRITE_HELP = (
    "how an AsyncAPI 3 document writes send/receive: 'application' (the specification's) or "
    "'client' (what WSO2 API Manager 4.7 reads correctly); default: as the source was read, "
    "else application"
)


def add_point_of_view(
    parser: argparse.ArgumentParser, *, flag: str = "--point-of-view", help_text: str = READ_HELP
) -> None:
    parser.add_argument(flag, choices=[p.value for p in PointOfView], help=help_text)


def point_of_view(value: str | None) -> PointOfView | None:
    """The parsed value of a point-of-view option."""
    return None if value is None else PointOfView(value)


def add_ref_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-outside-refs",
        action="store_true",
        help="let $refs lead outside the document's folder and the current directory, "
        "including absolute paths and file: URLs (nothing is ever fetched from the network)",
    )
    # Kept so that existing scripts still run; remote references are never fetched.
    parser.add_argument("--allow-remote-refs", action="store_true", help=argparse.SUPPRESS)


def ref_policy(args: argparse.Namespace) -> dict[str, Any]:
    """The ``$ref`` policy of the command line: relative references may also lead anywhere
    under the current directory; the rest only with --allow-outside-refs."""
    if args.allow_remote_refs:
        print(
            "note: --allow-remote-refs has no effect: remote $refs are never fetched",
            file=sys.stderr,
        )
    return {"allow_outside_refs": args.allow_outside_refs, "ref_root": os.getcwd()}
