"""Group invitations: how someone whose ``group_adds`` setting refuses a direct add still
gets into a group, by accepting a pending invitation (or declining it).

The owner adds as usual; those who let the owner add them become members at once, the
others get an invitation (``invitation:new`` after the commit). A user who blocked the
owner gets neither: the add answers 403 naming them (see :mod:`.chats`).
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.exc import IntegrityError

from app.domain.accounts.models import DELETED_ACCOUNT_NAME, User
from app.domain.messenger.flows import MessengerFlows
from app.domain.messenger.models import (
    MAX_GROUP_MEMBERS,
    MEMBER,
    Chat,
    ChatInvitation,
    ChatMember,
)
from app.domain.messenger.schemas import ChatOut, InvitationOut
from app.lib.errors import ConflictError, NotFoundError

INVITATION_NOT_FOUND = "No such invitation."


class InvitationService(MessengerFlows):
    """Pending invitations into groups: made by the owner's adds, seen, accepted and
    declined by their invitee only (anyone else gets 404)."""

    async def _invite(self, chat: Chat, inviter: User, invitee_ids: Iterable[UUID]) -> None:
        """One pending invitation per invitee (inviting again changes nothing); each new
        invitee hears ``invitation:new`` once the transaction commits."""
        wanted = list(dict.fromkeys(invitee_ids))
        if not wanted:
            return
        pending = set(
            await self.session.scalars(
                select(ChatInvitation.invitee_id).where(
                    ChatInvitation.chat_id == chat.id, ChatInvitation.invitee_id.in_(wanted)
                )
            )
        )
        created: dict[UUID, UUID] = {}  # invitation id: invitee id
        for invitee_id in wanted:
            if invitee_id in pending:
                continue
            invitation = ChatInvitation(
                chat_id=chat.id, invitee_id=invitee_id, inviter_id=inviter.id
            )
            try:
                async with self.session.begin_nested():
                    self.session.add(invitation)
                    await self.session.flush()
            except IntegrityError:
                # Invited by a concurrent add: that invitation stands.
                continue
            created[invitation.id] = invitee_id
        if created:
            self._after_commit(lambda: self._announce_invitations(created))

    async def _announce_invitations(self, invitees: dict[UUID, UUID]) -> None:
        async with self._own_reads() as reads:
            views = await reads._invitation_views(ChatInvitation.id.in_(list(invitees)))
        for view in views:
            await self.events.emit("invitation:new", view, [invitees[view.id]])

    async def _forget_invitations(self, chat_id: UUID, user_ids: Iterable[UUID]) -> None:
        """Those who just joined ``chat_id`` by another way need no invitation any more."""
        await self.session.execute(
            delete(ChatInvitation).where(
                ChatInvitation.chat_id == chat_id, ChatInvitation.invitee_id.in_(list(user_ids))
            )
        )

    async def _invitation_views(self, where: ColumnElement[bool]) -> list[InvitationOut]:
        member_count = (
            select(func.count())
            .where(ChatMember.chat_id == Chat.id)
            .correlate(Chat)
            .scalar_subquery()
        )
        rows = (
            await self.session.execute(
                select(ChatInvitation, Chat.title, member_count)
                .join(Chat, Chat.id == ChatInvitation.chat_id)
                .where(where)
                .order_by(ChatInvitation.created_at.desc(), ChatInvitation.id.desc())
            )
        ).all()
        inviters = await self.accounts.member_cards(
            select(ChatInvitation.inviter_id).where(
                ChatInvitation.id.in_([invitation.id for invitation, _, _ in rows])
            )
        )
        views = []
        for invitation, title, count in rows:
            inviter = inviters.get(invitation.inviter_id) if invitation.inviter_id else None
            views.append(
                InvitationOut(
                    id=invitation.id,
                    chat_id=invitation.chat_id,
                    chat_title=title or "",
                    member_count=int(count),
                    inviter_id=invitation.inviter_id,
                    inviter_name=inviter.name if inviter else DELETED_ACCOUNT_NAME,
                    created_at=invitation.created_at,
                )
            )
        return views

    async def list_invitations(self, user: User) -> list[InvitationOut]:
        """My pending invitations, newest first."""
        return await self._invitation_views(ChatInvitation.invitee_id == user.id)

    async def _my_invitation(self, user: User, invitation_id: UUID) -> ChatInvitation:
        invitation = await self.session.scalar(
            select(ChatInvitation).where(
                ChatInvitation.id == invitation_id, ChatInvitation.invitee_id == user.id
            )
        )
        if invitation is None:
            raise NotFoundError(INVITATION_NOT_FOUND)
        return invitation

    async def accept_invitation(self, user: User, invitation_id: UUID) -> ChatOut:
        """Joins the group: "X joined the group" in it, ``chat:new`` to me and
        ``chat:updated`` to the other members. 409 while the group is full (the
        invitation stays). Already a member (a race with a direct add): the invitation is
        dropped and the group answered."""
        invitation = await self._my_invitation(user, invitation_id)
        await self._limit("membership", user.id, self.settings.membership_changes_per_minute)
        chat = await self.session.get(Chat, invitation.chat_id)
        if chat is None:  # pragma: no cover - the invitation goes with its group (cascade)
            raise NotFoundError(INVITATION_NOT_FOUND)
        await self.session.delete(invitation)
        if await self.is_member(chat.id, user.id):
            await self.session.flush()
            return await self.chat_view(chat.id, user.id)
        # The system message's UPDATE of the chat row serialises concurrent joins, so the
        # member count read after it holds until this transaction ends.
        system = await self._system_message(chat, f"{user.name} joined the group")
        current = await self.member_ids(chat.id)
        if len(current) + 1 > MAX_GROUP_MEMBERS:
            raise ConflictError(f"The group is full: it has {MAX_GROUP_MEMBERS} members.")
        self.session.add(ChatMember(chat_id=chat.id, user_id=user.id, role=MEMBER))
        await self.session.flush()
        self._after_commit(lambda: self._emit_chat("chat:new", chat.id, [user.id]))
        self._after_commit(lambda: self._emit_chat("chat:updated", chat.id, current))
        self._after_commit(lambda: self._announce_system(system, [*current, user.id]))
        return await self.chat_view(chat.id, user.id)

    async def decline_invitation(self, user: User, invitation_id: UUID) -> None:
        """Drops the invitation; the group and its members hear nothing."""
        invitation = await self._my_invitation(user, invitation_id)
        await self.session.delete(invitation)
        await self.session.flush()
