"""What the binding API answers."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec


class TelegramLink(msgspec.Struct):
    """A deep link that opens the bot with a single-use binding token."""

    link: Annotated[
        str,
        msgspec.Meta(
            description="Open it in Telegram and press Start; the bot binds that chat.",
            examples=["https://t.me/QuintetNotifyBot?start=Jk2xQ0Yk7mXW3bq9mB8yT1cVd4eR5uHs"],
        ),
    ]
    expires_in: Annotated[
        int, msgspec.Meta(ge=1, description="Seconds until the link stops working.", examples=[900])
    ]


class TelegramBindingStatus(msgspec.Struct):
    """Whether the current user's notifications go to a Telegram chat."""

    bound: bool
    bound_at: datetime | None = None
