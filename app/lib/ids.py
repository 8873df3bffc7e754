"""Identifiers: UUIDv7 everywhere, so ids sort by creation time."""

from __future__ import annotations

import uuid

import uuid_utils


def new_uuid7() -> uuid.UUID:
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)
