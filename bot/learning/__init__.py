"""Learning from past conversations: importing transcripts into the bot folder, redacted."""

from bot.learning.importer import FileReport, ImportCounts, ImportReport, import_files
from bot.learning.transcripts import Conversation, Message, Speaker, load_conversations

__all__ = ["Conversation", "FileReport", "ImportCounts", "ImportReport", "Message", "Speaker",
           "import_files", "load_conversations"]
