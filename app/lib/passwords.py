"""Password hashing with argon2id; hashing and verification run off the event loop (CPU work).

The cost comes from the settings (``PASSWORD_HASH_*``): production keeps at least OWASP's
minimum, the test suite lowers it so its hundreds of registrations do not dominate the run.
Hashes record their own parameters, so a change of cost still verifies every stored hash.
"""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.config import Settings

_hasher = PasswordHasher()
# A real hash to verify against when the account does not exist, so timing does not reveal
# it; made on first use (at import it cost 0.2-1.6 s of every start-up and CLI call).
_dummy_hash: str | None = None


def configure_password_hashing(settings: Settings) -> None:
    """Use the cost the settings ask for (called by the application factory)."""
    global _hasher, _dummy_hash
    hasher = PasswordHasher(
        time_cost=settings.password_hash_time_cost,
        memory_cost=settings.password_hash_memory_kib,
        parallelism=settings.password_hash_parallelism,
    )
    if (hasher.time_cost, hasher.memory_cost, hasher.parallelism) != (
        _hasher.time_cost,
        _hasher.memory_cost,
        _hasher.parallelism,
    ):
        _hasher, _dummy_hash = hasher, None


def _dummy() -> str:
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash("dummy password for timing equalisation")
    return _dummy_hash


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def _verify() -> bool:
        try:
            return _hasher.verify(password_hash or _dummy(), password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(_verify)
