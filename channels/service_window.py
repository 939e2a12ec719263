"""The customer-service window of WhatsApp and Meta's other inboxes: a business may message a
person freely for 24 hours after that person's last message.

The time each sender last wrote is kept **in memory, per process**: after a restart, or in
another ``bot serve`` worker, a sender counts as outside the window until they write again.
"""

from __future__ import annotations

from collections import OrderedDict

WINDOW_S = 24 * 3600.0  # the customer-service window
KNOWN_SENDERS = 100_000


class ServiceWindow:
    """When each sender last wrote: the last :data:`KNOWN_SENDERS` senders, in memory."""

    def __init__(self, size: int = KNOWN_SENDERS) -> None:
        self.size = size
        self._last: OrderedDict[str, float] = OrderedDict()

    def opened(self, sender: str, now: float) -> None:
        """``sender`` wrote at ``now``."""
        self._last.pop(sender, None)
        self._last[sender] = now
        if len(self._last) > self.size:
            self._last.popitem(last=False)

    def age(self, sender: str, now: float) -> float | None:
        """Seconds since ``sender`` last wrote; None when not known to this process."""
        last = self._last.get(sender)
        return None if last is None else max(0.0, now - last)
