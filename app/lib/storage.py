"""Binary blobs (avatars, message images and files) kept in the database.

Keeping them in PostgreSQL means any number of API replicas serve them without a shared
volume or an object store, and a blob is committed or rolled back with the row that refers
to it. Blobs are immutable: replacing an avatar writes new blobs, so a blob's ETag (its
SHA-256) never changes and responses can be cached for long.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

from advanced_alchemy.base import UUIDv7Base
from advanced_alchemy.types import DateTimeUTC
from litestar import Request, Response
from sqlalchemy import Integer, LargeBinary, String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, deferred, mapped_column

# Types a browser never runs as a document or script. A blob declared as anything else (an
# uploaded file said to be text/html, image/svg+xml, application/javascript ...) is served
# as application/octet-stream; its declared type stays in the API's metadata.
PASSIVE_CONTENT_TYPES = frozenset(
    {
        "application/octet-stream",
        "application/pdf",
        "application/zip",
        "application/json",
        "text/plain",
        "text/csv",
        "image/jpeg",
        "image/png",
        "image/webp",
        "image/gif",
        "audio/mpeg",
        "audio/ogg",
        "audio/wav",
        "video/mp4",
        "video/webm",
    }
)


def served_content_type(declared: str) -> str:
    """The type to send a stored blob with: its own when passive, else a plain download."""
    declared = declared.strip().lower()
    return declared if declared in PASSIVE_CONTENT_TYPES else "application/octet-stream"


class Blob(UUIDv7Base):
    __tablename__ = "blob"

    content_type: Mapped[str] = mapped_column(String(100), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    sha256: Mapped[str] = mapped_column(String(64), nullable=False)
    # Deferred: listing rows that point at blobs must not drag megabytes along.
    data: Mapped[bytes] = deferred(mapped_column(LargeBinary, nullable=False))
    created_at: Mapped[datetime] = mapped_column(
        DateTimeUTC(timezone=True), nullable=False, default=lambda: datetime.now(UTC)
    )


class BlobStore:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def put(self, data: bytes, content_type: str) -> Blob:
        blob = Blob(
            content_type=content_type,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            data=data,
        )
        self.session.add(blob)
        await self.session.flush()
        return blob

    async def get(self, blob_id: UUID) -> Blob | None:
        return await self.session.scalar(select(Blob).where(Blob.id == blob_id))

    async def read(self, blob_id: UUID) -> tuple[Blob, bytes] | None:
        blob = await self.get(blob_id)
        if blob is None:
            return None
        data = await self.session.scalar(select(Blob.data).where(Blob.id == blob_id))
        return blob, data or b""

    async def delete(self, blob_ids: Iterable[UUID | None]) -> None:
        ids = [blob_id for blob_id in blob_ids if blob_id is not None]
        if ids:
            await self.session.execute(delete(Blob).where(Blob.id.in_(ids)))


def blob_response(
    request: Request[Any, Any, Any],
    blob: Blob,
    data: bytes,
    *,
    cache_control: str,
    download_name: str | None = None,
) -> Response[bytes]:
    """The blob with its type, a strong ETag (304 when the client has it) and safe headers."""
    etag = f'"{blob.sha256}"'
    headers = stored_file_headers(etag, cache_control)
    if download_name is not None:
        # Files are never rendered inline: an uploaded HTML file must not run on our origin.
        headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(download_name)}"
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(b"", status_code=304, headers=headers)
    return Response(data, media_type=served_content_type(blob.content_type), headers=headers)


def stored_file_headers(etag: str, cache_control: str) -> dict[str, str]:
    """The headers of a user's stored file (a blob, an audio record): its ETag, how long it
    may be cached, and, since it is the user's content, no sniffing and a sandbox."""
    return {
        "ETag": etag,
        "Cache-Control": cache_control,
        "X-Content-Type-Options": "nosniff",
        # Opened directly, an uploaded file gets no scripts, no origin and nothing to load.
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` header names ``etag`` (weak or strong) or is ``*``."""
    if not header:
        return False
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in candidates or etag in candidates
