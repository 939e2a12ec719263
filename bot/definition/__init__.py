"""Bot definitions: bot.yaml and the files it includes, read into frozen, checked config."""
