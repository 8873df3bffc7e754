"""Every domain's models, imported in one place for the metadata and Alembic."""

from app.domain.accounts.models import AuthSession, RefreshToken, User, UserBlock
from app.domain.achievements.models import (
    Achievement,
    AchievementTranslation,
    Award,
    Player,
    PlayerStats,
)
from app.domain.audio.models import AudioRecord, AudioUser
from app.domain.board.models import BoardOwner
from app.domain.messenger.models import (
    Chat,
    ChatInvitation,
    ChatMember,
    Message,
    MessageAttachment,
    MessageLike,
)
from app.domain.telegram.models import TelegramBinding
from app.domain.trivia.models import TriviaQuestion
from app.lib.storage import Blob

__all__ = [
    "Achievement",
    "AchievementTranslation",
    "AudioRecord",
    "AudioUser",
    "AuthSession",
    "Award",
    "Blob",
    "BoardOwner",
    "Chat",
    "ChatInvitation",
    "ChatMember",
    "Message",
    "MessageAttachment",
    "MessageLike",
    "Player",
    "PlayerStats",
    "RefreshToken",
    "TelegramBinding",
    "TriviaQuestion",
    "User",
    "UserBlock",
]
