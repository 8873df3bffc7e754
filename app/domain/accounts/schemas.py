"""Request and response bodies of the accounts API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

Phone = Annotated[
    str,
    Meta(
        min_length=3,
        max_length=32,
        examples=["+79161234567"],
        description="E.164 or any international format",
    ),
]
Password = Annotated[
    str,
    Meta(
        min_length=10,
        max_length=128,
        examples=["correct horse battery"],
        description="At least 10 characters, and not one of the most common leaked passwords",
    ),
]
PhoneDiscovery = Annotated[
    Literal["everyone", "contacts", "nobody"],
    Meta(
        description="Who finds this account by searching its full phone number: everyone "
        "signed in, contacts (people who share a chat with it) or nobody"
    ),
]
GroupAdds = Annotated[
    Literal["everyone", "contacts", "nobody"],
    Meta(
        description="Who may add this account to a group: everyone signed in, contacts "
        "(people who already share a chat with it) or nobody"
    ),
]
Name = Annotated[str, Meta(min_length=1, max_length=64, examples=["Alice"])]
Bio = Annotated[str, Meta(max_length=500, examples=["Backend developer"])]
Username = Annotated[
    str,
    Meta(
        pattern=r"^[A-Za-z][A-Za-z0-9_]{2,31}$",
        examples=["alice_1"],
        description="3-32 letters, digits or _, starting with a letter; case-insensitive",
    ),
]


class RegisterRequest(Struct, forbid_unknown_fields=True):
    phone: Phone
    password: Password
    name: Name


class LoginRequest(Struct, forbid_unknown_fields=True):
    phone: Phone
    password: Annotated[str, Meta(min_length=1, max_length=128)]


class RefreshRequest(Struct, forbid_unknown_fields=True):
    refresh_token: Annotated[str, Meta(min_length=1, max_length=256)]


class ProfileUpdate(Struct, forbid_unknown_fields=True):
    """Only the fields sent change; ``username: null`` removes the username."""

    name: Name | UnsetType = UNSET
    bio: Bio | UnsetType = UNSET
    username: Username | UnsetType | None = UNSET
    phone_discovery: PhoneDiscovery | UnsetType = UNSET
    group_adds: GroupAdds | UnsetType = UNSET


class AccountDeletion(Struct, forbid_unknown_fields=True):
    password: Annotated[
        str, Meta(min_length=1, max_length=128, description="The account's password, to confirm")
    ]


class AvatarUpload(Struct, forbid_unknown_fields=True):
    image: Annotated[
        str,
        Meta(
            min_length=1,
            description="The image as base64 or a data URL (JPEG, PNG or WebP)",
            examples=["data:image/png;base64,iVBORw0KGgo..."],
        ),
    ]


class Avatar(Struct):
    original: str
    size_400: str = msgspec.field(name="400")
    size_100: str = msgspec.field(name="100")
    size_50: str = msgspec.field(name="50")


class UserProfile(Struct):
    """What anyone signed in may see about a user (no phone number)."""

    id: UUID
    name: str
    username: str | None
    bio: str
    avatar: Avatar | None
    online: Annotated[
        bool, Meta(description="Connected now; always false for a user who blocked you")
    ] = False
    # True for a deleted account: its name reads "Deleted account" and nothing else is left.
    deleted: bool = False


class Me(Struct):
    id: UUID
    phone: str
    name: str
    username: str | None
    bio: str
    avatar: Avatar | None
    created_at: datetime
    phone_discovery: PhoneDiscovery = "everyone"
    group_adds: GroupAdds = "contacts"


class SessionOut(Struct):
    """One signed-in device or browser."""

    id: UUID
    device: str
    user_agent: str
    created_at: datetime
    last_seen_at: datetime
    # True for the session whose access token made this request.
    current: bool = False


class TokenPair(Struct):
    access_token: str
    refresh_token: str
    expires_in: int
    user: Me
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type, not a secret
