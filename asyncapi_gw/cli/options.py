"""Options that several commands share: how AsyncAPI 3 operations are read or written."""

from __future__ import annotations

import argparse

from asyncapi_gw.model import PointOfView

__all__ = ["READ_HELP", "WRITE_HELP", "add_point_of_view", "point_of_view"]

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
