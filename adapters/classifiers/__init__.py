"""The message classifiers: intent, sentiment, frustration and entities of a user message."""
