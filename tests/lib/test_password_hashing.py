"""The argon2id cost is a setting: the suite runs cheap, production refuses to run weak."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from app.config import ConfigurationError, Settings
from app.lib import passwords
from app.lib.passwords import configure_password_hashing, hash_password, verify_password

STRONG = {"secret_key": secrets.token_hex(32), "admin_api_key": secrets.token_hex(20)}


@pytest.fixture(autouse=True)
def restore_hasher() -> Iterator[None]:
    hasher, dummy = passwords._hasher, passwords._dummy_hash
    yield
    passwords._hasher, passwords._dummy_hash = hasher, dummy


async def test_hashes_carry_the_configured_cost_and_verify_after_it_changes() -> None:
    configure_password_hashing(
        Settings(
            password_hash_time_cost=1, password_hash_memory_kib=1024, password_hash_parallelism=1
        )
    )
    cheap = await hash_password("correct horse battery")
    assert "$m=1024,t=1,p=1$" in cheap

    configure_password_hashing(Settings())
    assert "$m=65536,t=3,p=4$" in await hash_password("correct horse battery")
    assert await verify_password(cheap, "correct horse battery")
    assert not await verify_password(cheap, "wrong horse battery")
    assert not await verify_password(None, "correct horse battery")


def test_production_refuses_a_cost_below_the_owasp_minimum() -> None:
    with pytest.raises(ConfigurationError, match="PASSWORD_HASH_MEMORY_KIB"):
        Settings(env="production", password_hash_memory_kib=1024, **STRONG).check()  # type: ignore[arg-type]
    Settings(env="test", password_hash_memory_kib=1024).check()


def test_a_cost_no_argon2_can_use_is_refused_everywhere() -> None:
    with pytest.raises(ConfigurationError, match="at least 1"):
        Settings(password_hash_time_cost=0).check()


def test_the_environment_sets_the_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PASSWORD_HASH_TIME_COST", "2")
    monkeypatch.setenv("PASSWORD_HASH_MEMORY_KIB", "19456")
    monkeypatch.setenv("PASSWORD_HASH_PARALLELISM", "1")
    settings = Settings.from_env()
    assert (
        settings.password_hash_time_cost,
        settings.password_hash_memory_kib,
        settings.password_hash_parallelism,
    ) == (2, 19456, 1)
