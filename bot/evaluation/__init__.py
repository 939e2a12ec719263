"""Measuring a bot: intent evaluation, answer generation, conversation tests, usage stats."""
