"""Chats: direct chats (one per pair), groups, membership, pins and mutes."""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.domain.accounts.models import User
from app.domain.messenger.invitations import InvitationService
from app.domain.messenger.models import (
    DIRECT,
    GROUP,
    MAX_GROUP_MEMBERS,
    MEMBER,
    OWNER,
    Chat,
    ChatMember,
)
from app.domain.messenger.schemas import (
    ChatOut,
    GroupChatOut,
)
from app.domain.messenger.views import _now
from app.lib.errors import ForbiddenError, InvalidInputError, NotFoundError


def direct_key(a: UUID, b: UUID) -> str:
    low, high = sorted((str(a), str(b)))
    return f"{low}:{high}"


def clean_title(title: str) -> str:
    if "\x00" in title:
        raise InvalidInputError("The title must not contain NUL characters.")
    if not title.strip():
        raise InvalidInputError("The title must not be blank.")
    return title.strip()


Cursor = UUID | int


def group_change(view: ChatOut, added: Iterable[UUID], invited: Iterable[UUID]) -> GroupChatOut:
    return GroupChatOut(**msgspec.structs.asdict(view), added=list(added), invited=list(invited))


class ChatService(InvitationService):
    """Direct chats and groups: creating them, titles, members, pins and mutes."""

    async def create_direct_chat(self, user: User, other_id: UUID) -> tuple[ChatOut, bool]:
        """The direct chat of the two users; ``created`` is False when it already existed."""
        if other_id == user.id:
            raise InvalidInputError("A direct chat needs another user.")
        await self._limit("chats", user.id, self.settings.chats_created_per_minute)
        if await self.accounts.has_blocked(other_id, user.id):
            # Blocked by them: as if they did not exist.
            raise NotFoundError("No such user.")
        key = direct_key(user.id, other_id)
        existing = await self.session.scalar(select(Chat.id).where(Chat.direct_key == key))
        if existing is not None:
            return await self.chat_view(existing, user.id), False
        if not await self.accounts.get_many([other_id]):
            # Unknown and deleted accounts alike: there is nobody to talk to.
            raise NotFoundError("No such user.")
        chat = Chat(type=DIRECT, direct_key=key)
        try:
            async with self.session.begin_nested():
                self.session.add(chat)
                await self.session.flush()
                self.session.add_all(
                    [
                        ChatMember(chat_id=chat.id, user_id=user.id, role=MEMBER),
                        ChatMember(chat_id=chat.id, user_id=other_id, role=MEMBER),
                    ]
                )
                await self.session.flush()
        except IntegrityError:
            # The other user opened the same chat at the same moment: theirs stands.
            existing = await self.session.scalar(select(Chat.id).where(Chat.direct_key == key))
            if existing is None:
                raise
            return await self.chat_view(existing, user.id), False
        await self.session.flush()
        self._after_commit(
            lambda: self._emit_chat("chat:new", chat.id, [user.id, other_id]), chat_id=chat.id
        )
        return await self.chat_view(chat.id, user.id), True

    async def create_group_chat(
        self, user: User, title: str, member_ids: Iterable[UUID]
    ) -> GroupChatOut:
        """A group owned by ``user``: those who let ``user`` add them are members at once,
        the others get an invitation (see :meth:`_check_group_adds`)."""
        others = [i for i in dict.fromkeys(member_ids) if i != user.id]
        if len(others) + 1 > MAX_GROUP_MEMBERS:
            raise InvalidInputError(f"A group has at most {MAX_GROUP_MEMBERS} members.")
        title = clean_title(title)
        await self._limit("chats", user.id, self.settings.chats_created_per_minute)
        users = await self._existing_users(others, field="member_ids")
        invited = await self._check_group_adds(user, others, field="member_ids")
        users = [u for u in users if u.id not in invited]
        if invited:
            await self._limit("membership", user.id, self.settings.membership_changes_per_minute)
        chat = Chat(type=GROUP, title=title, owner_id=user.id)
        self.session.add(chat)
        await self.session.flush()
        self.session.add(ChatMember(chat_id=chat.id, user_id=user.id, role=OWNER))
        self.session.add_all(ChatMember(chat_id=chat.id, user_id=u.id, role=MEMBER) for u in users)
        system = await self._system_message(chat, f"{user.name} created the group “{chat.title}”")
        await self.session.flush()
        await self._invite(chat, user, invited)
        recipients = [user.id, *(u.id for u in users)]
        self._after_commit(lambda: self._emit_chat("chat:new", chat.id, recipients))
        self._after_commit(lambda: self._announce_system(system, recipients))
        return group_change(await self.chat_view(chat.id, user.id), recipients[1:], invited)

    async def _existing_users(self, ids: list[UUID], *, field: str) -> list[User]:
        users = await self.accounts.get_many(ids)
        missing = [str(i) for i in ids if i not in users]
        if missing:
            raise InvalidInputError(
                "Unknown users: " + ", ".join(missing),
                errors=[{"field": field, "source": "body", "message": "unknown user"}],
            )
        return [users[i] for i in ids]

    async def _check_group_adds(self, user: User, ids: list[UUID], *, field: str) -> list[UUID]:
        """Those of ``ids`` whose ``group_adds`` setting does not let ``user`` add them
        directly: they are to be invited instead. 403 naming every one of ``ids`` who
        blocked ``user`` (no add, no invitation); nobody is added then, nobody silently
        dropped."""
        not_direct = await self.accounts.refusing_group_adds(user.id, ids)
        refused = await self.accounts.blocking(user.id, not_direct)
        if refused:
            names = ", ".join(str(i) for i in refused[:10])
            if len(refused) > 10:
                names += f" and {len(refused) - 10} more (see errors)"
            raise ForbiddenError(
                f"These users do not let you add them to a group: {names}",
                errors=[
                    {"field": field, "source": "body", "message": f"refused: {i}"} for i in refused
                ],
            )
        return not_direct

    async def _owned_group(self, chat_id: UUID, user: User) -> tuple[Chat, ChatMember]:
        chat, membership = await self._membership(chat_id, user.id)
        if chat.type != GROUP:
            raise ForbiddenError("Direct chats have no title or member management.")
        if chat.owner_id != user.id:
            raise ForbiddenError("Only the group's owner can do this.")
        return chat, membership

    async def rename_chat(self, user: User, chat_id: UUID, title: str) -> ChatOut:
        title = clean_title(title)
        chat, _ = await self._owned_group(chat_id, user)
        await self._limit("membership", user.id, self.settings.membership_changes_per_minute)
        chat.title = title
        system = await self._system_message(
            chat, f"{user.name} renamed the group to “{chat.title}”"
        )
        await self.session.flush()
        members = await self.member_ids(chat.id)
        self._after_commit(lambda: self._emit_chat("chat:updated", chat.id, members))
        self._after_commit(lambda: self._announce_system(system, members))
        return await self.chat_view(chat.id, user.id)

    async def add_members(
        self, user: User, chat_id: UUID, user_ids: Iterable[UUID]
    ) -> GroupChatOut:
        """Those who let the owner add them join at once; the others are invited."""
        chat, _ = await self._owned_group(chat_id, user)
        current = set(await self.member_ids(chat.id))
        wanted = [i for i in dict.fromkeys(user_ids) if i not in current]
        if len(current) + len(wanted) > MAX_GROUP_MEMBERS:
            raise InvalidInputError(f"A group has at most {MAX_GROUP_MEMBERS} members.")
        users = await self._existing_users(wanted, field="user_ids")
        invited = await self._check_group_adds(user, wanted, field="user_ids")
        users = [u for u in users if u.id not in invited]
        if not users and not invited:
            return group_change(await self.chat_view(chat.id, user.id), [], [])
        await self._limit("membership", user.id, self.settings.membership_changes_per_minute)
        await self._invite(chat, user, invited)
        if not users:
            return group_change(await self.chat_view(chat.id, user.id), [], invited)
        self.session.add_all(ChatMember(chat_id=chat.id, user_id=u.id, role=MEMBER) for u in users)
        await self._forget_invitations(chat.id, (u.id for u in users))
        names = ", ".join(u.name for u in users)
        system = await self._system_message(chat, f"{user.name} added {names}")
        await self.session.flush()
        added = [u.id for u in users]
        self._after_commit(lambda: self._emit_chat("chat:new", chat.id, added))
        self._after_commit(lambda: self._emit_chat("chat:updated", chat.id, current))
        self._after_commit(lambda: self._announce_system(system, [*current, *added]))
        return group_change(await self.chat_view(chat.id, user.id), added, invited)

    async def remove_member(self, user: User, chat_id: UUID, member_id: UUID) -> None:
        """The owner removes anyone; any member may remove themselves (leave). When the
        owner leaves, the longest-standing member becomes the owner."""
        chat, _ = await self._membership(chat_id, user.id)
        if chat.type != GROUP:
            raise ForbiddenError("Nobody can leave or be removed from a direct chat.")
        if member_id != user.id and chat.owner_id != user.id:
            raise ForbiddenError("Only the group's owner can remove other members.")
        target = await self.session.scalar(
            select(ChatMember).where(ChatMember.chat_id == chat.id, ChatMember.user_id == member_id)
        )
        if target is None:
            raise NotFoundError("This user is not a member of the chat.")
        await self._limit("membership", user.id, self.settings.membership_changes_per_minute)
        removed = (await self.accounts.get_many([member_id])).get(member_id)
        await self.session.delete(target)
        await self.session.flush()
        if member_id == chat.owner_id:
            heir = await self.session.scalar(
                select(ChatMember)
                .where(ChatMember.chat_id == chat.id)
                .order_by(ChatMember.joined_at, ChatMember.id)
                .limit(1)
            )
            chat.owner_id = heir.user_id if heir else None
            if heir is not None:
                heir.role = OWNER
        removed_name = removed.name if removed else "A member"
        text = (
            f"{removed_name} left the group"
            if member_id == user.id
            else f"{user.name} removed {removed_name}"
        )
        system = await self._system_message(chat, text)
        await self.session.flush()
        remaining = await self.member_ids(chat.id)
        self._after_commit(
            lambda: self.events.emit("chat:removed", {"id": str(chat.id)}, [member_id])
        )
        self._after_commit(lambda: self._emit_chat("chat:updated", chat.id, remaining))
        self._after_commit(lambda: self._announce_system(system, remaining))

    async def set_pinned(self, user: User, chat_id: UUID, pinned: bool) -> ChatOut:
        _, membership = await self._membership(chat_id, user.id)
        if pinned and membership.pinned_at is None:
            membership.pinned_at = _now()
        elif not pinned:
            membership.pinned_at = None
        await self.session.flush()
        return await self.chat_view(chat_id, user.id)

    async def set_muted(self, user: User, chat_id: UUID, muted: bool) -> ChatOut:
        _, membership = await self._membership(chat_id, user.id)
        membership.muted = muted
        await self.session.flush()
        return await self.chat_view(chat_id, user.id)

    # --- messages ---------------------------------------------------------------------------
