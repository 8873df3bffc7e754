"""Tokens the server hands out and later recognises (refresh tokens, Telegram link tokens,
audio upload tokens) are kept only as their SHA-256, so a leaked table or Redis dump holds no
usable token. They are long random values: no salt or slow hash is needed."""

from __future__ import annotations

import hashlib
from uuid import UUID


def hash_token(token: str | bytes | UUID) -> str:
    """The hex SHA-256 of a token: a string's UTF-8, a UUID's 16 bytes."""
    if isinstance(token, UUID):
        raw = token.bytes
    elif isinstance(token, str):
        raw = token.encode()
    else:
        raw = token
    return hashlib.sha256(raw).hexdigest()
