"""Telegram: binding accounts to Telegram chats and notifying offline users through the bot."""
