"""Messenger accounts (seeds 001 and 003): phone-number sign-up, JWT sessions, profiles, avatars."""
