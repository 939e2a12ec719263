"""What the session store's events say about the bot: answers, numbers, gaps, SVG charts."""
