"""Request and response bodies of the audio API."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from msgspec import Meta


class CreateAudioUser(msgspec.Struct):
    name: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=100,
            # Printable text with at least one visible character (PostgreSQL refuses NUL).
            pattern=r"^[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*$",
            description="Display name",
        ),
    ]


class AudioUserCreated(msgspec.Struct):
    """The token is shown once, here; the server keeps only its hash."""

    id: UUID
    token: UUID
    name: str


class RecordCreated(msgspec.Struct):
    id: UUID
    url: str
