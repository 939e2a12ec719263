"""The answer decision: whether a FAQ passage or an intent answers a question."""
