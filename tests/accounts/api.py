"""Small clients of the accounts API shared by the messenger tests."""

from __future__ import annotations

import base64
import io
import itertools
from dataclasses import dataclass
from typing import Any

import httpx
from PIL import Image

_numbers = itertools.count(1)


def new_phone() -> str:
    """A different valid Russian mobile number each call."""
    return f"+7916{next(_numbers):07d}"


@dataclass
class Account:
    id: str
    phone: str
    password: str
    name: str
    access_token: str
    refresh_token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


DEFAULT_PASSWORD = "correct horse battery"


async def register(
    client: httpx.AsyncClient, name: str = "Alice", password: str = DEFAULT_PASSWORD
) -> Account:
    phone = new_phone()
    response = await client.post(
        "/api/v1/auth/register", json={"phone": phone, "password": password, "name": name}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Account(
        id=body["user"]["id"],
        phone=phone,
        password=password,
        name=name,
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
    )


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (640, 480), color: Any = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, format=fmt)
    return out.getvalue()


def data_url(data: bytes, content_type: str = "image/png") -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"
