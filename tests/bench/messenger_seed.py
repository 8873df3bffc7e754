"""Seed a PostgreSQL database for the messenger benchmarks.

    python -m tests.bench.messenger_seed [--messages 1000000] [--chats 10000] [--hub-chats 500]

Resets the schema of BENCH_DATABASE_URL (never point it at data you keep), applies the
migrations and bulk-loads users, chats, members and messages with COPY, showing a progress
bar. Members have read all but the last three messages of 90% of their chats. The "hub" user (phone +79990000000, password "bench password") is a member of
``--hub-chats`` chats: the chat-list benchmark signs in as them.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import uuid_utils
from argon2 import PasswordHasher
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tests.bench.harness import BENCH_DATABASE_URL, prepare_database

HUB_PHONE = "+79990000000"
HUB_PASSWORD = "bench password"
USERS = 5000
BATCH = 50_000


def uuid7_at(moment: datetime, rng: random.Random) -> uuid.UUID:
    """A UUIDv7 for a moment in the past, so ids sort like the seeded history."""
    ms = int(moment.timestamp() * 1000)
    rand = rng.getrandbits(74)
    value = (
        (ms << 80) | (0x7 << 76) | ((rand >> 62) << 64) | (0b10 << 62) | (rand & ((1 << 62) - 1))
    )
    return uuid.UUID(int=value)


async def reset_and_migrate() -> None:
    await prepare_database(BENCH_DATABASE_URL)


async def seed(messages: int, chats: int, hub_chats: int) -> None:
    await reset_and_migrate()
    dsn = BENCH_DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(dsn)
    rng = random.Random(42)
    now = datetime.now(UTC)
    start = now - timedelta(days=365)
    password_hash = PasswordHasher().hash(HUB_PASSWORD)

    users = [uuid_utils.uuid7() for _ in range(USERS)]
    hub = users[0]
    await connection.copy_records_to_table(
        "user_account",
        columns=["id", "phone", "name", "bio", "password_hash", "created_at", "updated_at"],
        records=[
            (
                str(user_id),
                HUB_PHONE if user_id == hub else f"+7990{i:07d}",
                "Hub" if user_id == hub else f"User {i}",
                "",
                password_hash,
                start,
                start,
            )
            for i, user_id in enumerate(users)
        ],
    )

    chat_ids = [uuid_utils.uuid7() for _ in range(chats)]
    chat_rows, member_rows = [], []
    pairs: set[str] = set()
    for index, chat_id in enumerate(chat_ids):
        while True:  # one direct chat per pair, as the application guarantees
            first = hub if index < hub_chats else rng.choice(users[1:])
            second = rng.choice(users[1:])
            low, high = sorted((str(first), str(second)))
            if first != second and f"{low}:{high}" not in pairs:
                pairs.add(f"{low}:{high}")
                break
        chat_rows.append((str(chat_id), "direct", None, None, f"{low}:{high}", start, now))
        for member in (first, second):
            member_rows.append(
                (str(uuid_utils.uuid7()), str(chat_id), str(member), "member", start, False)
            )
    await connection.copy_records_to_table(
        "chat",
        columns=["id", "type", "title", "owner_id", "direct_key", "created_at", "last_activity_at"],
        records=chat_rows,
    )
    await connection.copy_records_to_table(
        "chat_member",
        columns=["id", "chat_id", "user_id", "role", "joined_at", "muted"],
        records=member_rows,
    )
    members_of: dict[str, list[str]] = {}
    for _, member_chat, member_user, *_ in member_rows:
        members_of.setdefault(str(member_chat), []).append(str(member_user))

    step = (now - start) / messages
    columns = ["id", "chat_id", "seq", "sender_id", "type", "text", "created_at"]
    last_seq: dict[str, int] = {}
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ) as progress:
        task = progress.add_task("messages", total=messages)
        for offset in range(0, messages, BATCH):
            batch = []
            for n in range(offset, min(offset + BATCH, messages)):
                moment = start + step * n
                message_chat = str(chat_ids[rng.randrange(chats)])
                last_seq[message_chat] = last_seq.get(message_chat, 0) + 1
                batch.append(
                    (
                        str(uuid7_at(moment, rng)),
                        message_chat,
                        last_seq[message_chat],
                        rng.choice(members_of[message_chat]),
                        "text",
                        f"message number {n}",
                        moment,
                    )
                )
            await connection.copy_records_to_table("message", columns=columns, records=batch)
            progress.advance(task, len(batch))
    await connection.execute(
        "UPDATE chat SET last_activity_at = m.last, last_seq = m.seq FROM "
        "(SELECT chat_id, max(created_at) AS last, max(seq) AS seq FROM message "
        "GROUP BY chat_id) m "
        "WHERE m.chat_id = chat.id"
    )
    # Like real users, members have read most of their chats: all but the newest three
    # messages in nine chats out of ten, nothing in the rest.
    await connection.execute(
        "SELECT setseed(0.42); "
        "UPDATE chat_member SET last_read_message_id = (SELECT id FROM message m "
        "WHERE m.chat_id = chat_member.chat_id ORDER BY id DESC OFFSET 3 LIMIT 1) "
        "WHERE random() < 0.9"
    )
    # As autovacuum would have by now: the visibility map lets index-only scans skip the heap.
    await connection.execute("VACUUM ANALYZE")
    await connection.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--hub-chats", type=int, default=500)
    args = parser.parse_args()
    started = time.perf_counter()
    asyncio.run(seed(args.messages, args.chats, args.hub_chats))
    print(
        f"seeded {args.messages} messages in {args.chats} chats "
        f"({args.hub_chats} of them the hub's) in {time.perf_counter() - started:.0f}s"
    )


if __name__ == "__main__":
    main()
