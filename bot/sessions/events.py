"""The kinds of event the session store keeps (``SessionStore.log_event``): one place for all.

Whoever writes an event (the server, the agent API, the stores) and whoever reads it back
(``bot stats``, ``bot export``, ``bot train``'s taught answers) names its kind from here, so
the readers need not import the writers.
"""

from __future__ import annotations

TURN_EVENT = "turn"  # a served turn: channel, kind, intent, latency, question, answer
FEEDBACK_EVENT = "feedback"  # a thumbs up/down on a reply, with the conversation up to it
AGENT_REPLY_EVENT = "agent_reply"  # an agent's answer and the question it answers
HANDOFF_TAKEN_EVENT = "handoff_taken"  # an agent took a handed-off conversation
HANDOFF_RELEASED_EVENT = "handoff_released"  # an agent handed it back to the bot
HANDOFF_RETURNED_EVENT = "handoff_returned"  # an agent put it back in the waiting queue (desk)
HANDOFF_RESOLVED_EVENT = "handoff_resolved"  # an agent closed it; the bot is back (desk)
CHAT_ENDED_EVENT = "chat_ended"  # the customer ended the chat: its history, who held it
AGENT_NOTE_EVENT = "agent_note"  # a private note of an agent, never shown to the customer
DESK_SIGN_IN_EVENT = "desk_sign_in"  # an agent signed in to the desk (key desk:<session>)
DESK_SIGN_OUT_EVENT = "desk_sign_out"  # an agent signed out of the desk
REVIEW_MARK_EVENT = "review_mark"  # a lead's verdict on a bot answer (right/wrong/...)
INJECTION_FLAGGED_EVENT = "injection_flagged"  # a message the injection guard flagged
REPLY_GUARDED_EVENT = "reply_guarded"  # a reply the reply guard replaced
SESSION_EXPIRED_EVENT = "session_expired"  # a session past its lifetime was started afresh
