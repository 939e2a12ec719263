"""The floor every package stands on: message types, errors, settings fields."""
