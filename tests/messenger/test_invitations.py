"""Group invitations: an add that the invitee's ``group_adds`` setting refuses becomes a
pending invitation, which only the invitee may accept (joining the group) or decline."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.accounts.api import Account, register
from tests.messenger.api import allow_group_adds
from tests.messenger.sockets import SocketUser, connect
from tests.messenger.test_privacy import (
    block,
    chat_ids,
    create_group,
    owner_and_three_privacy_settings,
    set_group_adds,
)
from tests.security.schema import is_problem
from tests.support import LiveServer

EVENT_SECONDS = 20


async def invitations(client: httpx.AsyncClient, account: Account) -> list[dict[str, Any]]:
    response = await client.get("/api/v1/invitations", headers=account.headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def add_members(
    client: httpx.AsyncClient, owner: Account, group_id: str, members: list[Account]
) -> httpx.Response:
    return await client.post(
        f"/api/v1/chats/{group_id}/members",
        headers=owner.headers,
        json={"user_ids": [m.id for m in members]},
    )


async def invited_group(
    client: httpx.AsyncClient, owner: Account, member: Account, invitee: Account
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A group of ``owner`` and ``member`` (who allows adds), with ``invitee`` (a stranger
    to the owner, default setting) invited; the group and the invitee's invitation."""
    await allow_group_adds(client, member)
    created = await create_group(client, owner, [member, invitee])
    assert created.status_code == 201, created.text
    group = created.json()
    assert group["invited"] == [invitee.id]
    [invitation] = await invitations(client, invitee)
    return group, invitation


async def carol_invited_by_owner(
    client: httpx.AsyncClient,
) -> tuple[Account, Account, Account, dict[str, Any], dict[str, Any]]:
    """Owner, Bob and Carol; Owner's group with Bob, Carol invited (``invited_group``)."""
    owner = await register(client, name="Owner")
    bob = await register(client, name="Bob")
    carol = await register(client, name="Carol")
    group, invitation = await invited_group(client, owner, bob, carol)
    return owner, bob, carol, group, invitation


async def test_a_strangers_group_invites_me_instead_of_adding_me(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    owner = await register(client, name="Owner")
    alice = await register(client, name="Alice")
    a = await connect(live_server.url, alice.access_token)
    try:
        created = await create_group(client, owner, [alice])
        assert created.status_code == 201, created.text
        group = created.json()
        assert group["added"] == []
        assert group["invited"] == [alice.id]
        assert [m["id"] for m in group["members"]] == [owner.id]
        assert await chat_ids(client, alice) == []
        [invitation] = await invitations(client, alice)
        assert invitation["chat_id"] == group["id"]
        assert invitation["chat_title"] == "Team"
        assert invitation["inviter_id"] == owner.id
        assert invitation["inviter_name"] == "Owner"
        assert invitation["member_count"] == 1
        event = await a.wait_for("invitation:new", timeout=EVENT_SECONDS, id=invitation["id"])
        assert event == invitation
    finally:
        await a.close()


async def test_allowed_users_are_added_and_the_others_invited_in_one_add(
    client: httpx.AsyncClient,
) -> None:
    owner, open_, closed, private = await owner_and_three_privacy_settings(client)
    group = (await create_group(client, owner, [])).json()
    added = await add_members(client, owner, group["id"], [open_, closed, private])
    assert added.status_code == 200, added.text
    body = added.json()
    assert body["added"] == [open_.id]
    assert sorted(body["invited"]) == sorted([closed.id, private.id])
    assert {m["id"] for m in body["members"]} == {owner.id, open_.id}
    assert await chat_ids(client, open_) == [group["id"]]
    assert [i["chat_id"] for i in await invitations(client, closed)] == [group["id"]]
    assert [i["chat_id"] for i in await invitations(client, private)] == [group["id"]]
    # Inviting again keeps the one invitation.
    again = await add_members(client, owner, group["id"], [closed])
    assert again.json()["invited"] == [closed.id]
    assert len(await invitations(client, closed)) == 1


async def test_accepting_joins_the_group_and_its_members_hear_it(
    client: httpx.AsyncClient, live_server: LiveServer
) -> None:
    owner, bob, carol, group, invitation = await carol_invited_by_owner(client)
    opened: list[SocketUser] = []
    try:
        b = await connect(live_server.url, bob.access_token)
        c = await connect(live_server.url, carol.access_token)
        opened += [b, c]
        accepted = await client.post(
            f"/api/v1/invitations/{invitation['id']}/accept", headers=carol.headers
        )
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["id"] == group["id"]
        assert {m["id"] for m in accepted.json()["members"]} == {owner.id, bob.id, carol.id}
        new = await c.wait_for("chat:new", timeout=EVENT_SECONDS, id=group["id"])
        assert carol.id in {m["id"] for m in new["members"]}
        updated = await b.wait_for("chat:updated", timeout=EVENT_SECONDS, id=group["id"])
        assert carol.id in {m["id"] for m in updated["members"]}
        await b.wait_for("message:new", timeout=EVENT_SECONDS, text="Carol joined the group")
    finally:
        for user in opened:
            await user.close()
    assert await chat_ids(client, carol) == [group["id"]]
    assert await invitations(client, carol) == []
    again = await client.post(
        f"/api/v1/invitations/{invitation['id']}/accept", headers=carol.headers
    )
    assert is_problem(again, 404)


async def test_declining_removes_the_invitation_and_adds_nobody(
    client: httpx.AsyncClient,
) -> None:
    owner, bob, carol, group, invitation = await carol_invited_by_owner(client)
    declined = await client.post(
        f"/api/v1/invitations/{invitation['id']}/decline", headers=carol.headers
    )
    assert declined.status_code == 204, declined.text
    assert await invitations(client, carol) == []
    assert await chat_ids(client, carol) == []
    late = await client.post(
        f"/api/v1/invitations/{invitation['id']}/accept", headers=carol.headers
    )
    assert is_problem(late, 404)
    view = await client.get(f"/api/v1/chats/{group['id']}", headers=owner.headers)
    assert {m["id"] for m in view.json()["members"]} == {owner.id, bob.id}


async def test_only_the_invitee_can_accept_or_decline(client: httpx.AsyncClient) -> None:
    owner, bob, carol, _group, invitation = await carol_invited_by_owner(client)
    mallory = await register(client, name="Mallory")
    for someone in (mallory, owner, bob):
        for action in ("accept", "decline"):
            response = await client.post(
                f"/api/v1/invitations/{invitation['id']}/{action}", headers=someone.headers
            )
            assert is_problem(response, 404), (someone.name, action)
            assert "Team" not in response.text
        assert await invitations(client, someone) == []
    assert await chat_ids(client, mallory) == []
    assert [i["id"] for i in await invitations(client, carol)] == [invitation["id"]]
    anonymous = await client.post(f"/api/v1/invitations/{invitation['id']}/accept")
    assert is_problem(anonymous, 401)


async def test_a_user_who_blocked_the_adder_gets_no_invitation_and_the_add_is_refused(
    client: httpx.AsyncClient,
) -> None:
    owner = await register(client, name="Owner")
    alice = await register(client, name="Alice")
    carol = await register(client, name="Carol")
    await block(client, alice, owner)
    created = await create_group(client, owner, [alice, carol])
    assert is_problem(created, 403)
    assert alice.id in created.json()["detail"]
    assert carol.id not in created.json()["detail"]
    # Nothing was created, not even Carol's invitation.
    assert await invitations(client, carol) == []
    assert await chat_ids(client, owner) == []
    group = (await create_group(client, owner, [])).json()
    added = await add_members(client, owner, group["id"], [alice])
    assert is_problem(added, 403)
    assert alice.id in added.json()["detail"]
    assert await invitations(client, alice) == []


async def test_a_direct_add_after_the_setting_changed_replaces_the_invitation(
    client: httpx.AsyncClient,
) -> None:
    owner, _bob, carol, group, invitation = await carol_invited_by_owner(client)
    await set_group_adds(client, carol, "everyone")
    added = await add_members(client, owner, group["id"], [carol])
    assert added.json()["added"] == [carol.id]
    assert await invitations(client, carol) == []
    stale = await client.post(
        f"/api/v1/invitations/{invitation['id']}/accept", headers=carol.headers
    )
    assert is_problem(stale, 404)


async def test_an_invitation_into_a_full_group_cannot_be_accepted(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    _owner, bob, carol, group, invitation = await carol_invited_by_owner(client)
    monkeypatch.setattr("app.domain.messenger.invitations.MAX_GROUP_MEMBERS", 2)
    full = await client.post(
        f"/api/v1/invitations/{invitation['id']}/accept", headers=carol.headers
    )
    assert is_problem(full, 409)
    assert "full" in full.json()["detail"]
    assert await chat_ids(client, carol) == []
    # The invitation stays for when a seat frees up.
    assert [i["id"] for i in await invitations(client, carol)] == [invitation["id"]]
    left = await client.delete(f"/api/v1/chats/{group['id']}/members/{bob.id}", headers=bob.headers)
    assert left.status_code == 204
    joined = await client.post(
        f"/api/v1/invitations/{invitation['id']}/accept", headers=carol.headers
    )
    assert joined.status_code == 200, joined.text
