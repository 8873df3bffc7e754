"""The messenger (seeds 001 and 003): chats, groups, messages, likes, real-time delivery."""
