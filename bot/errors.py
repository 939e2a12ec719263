"""One exception hierarchy for the bot, and the translation of the libraries' errors.

``retrieval/`` and ``adapters/`` raise their own families (``retrieval.errors``,
``adapters.errors``); :func:`library_errors` turns them into these at ``bot/``'s boundary
(loading, training, a turn, evaluation) with ``raise ... from exc``, so callers only ever
need to catch :class:`BotError` (or one of its children).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from adapters import errors as adapter_errors
from foundation.errors import (  # noqa: F401  (the errors that cross floors, named here too)
    BadRequest,
    BotError,
    ChannelError,
    ConfigError,
    Forbidden,
    Located,
)
from retrieval import errors as retrieval_errors


class TranscriptError(Located, BotError):
    """A conversation file (given to `bot import`, or stored by it) is unreadable or invalid:
    the message names the file, line and field."""


class NotTrainedError(BotError):
    """An artefact that `bot train` builds (index, adapter, classifier) is missing or stale."""


class ModelError(BotError):
    """A model could not be loaded or run (missing file, wrong base, corrupt weights)."""


class RetrievalError(BotError):
    """The FAQ index could not be built, loaded or searched."""


class SessionError(BotError):
    """The session store failed (unreadable database, lock timeout)."""


class StoreUnavailable(SessionError):
    """The session store cannot be reached now (a Redis outage); retrying later may work
    (HTTP 503 with ``Retry-After``)."""


class TurnTimeout(BotError):
    """A turn took longer than its configured limit."""


class TemplateError(BotError):
    """A reply template could not be rendered (unsafe access, a failing filter)."""


class ActionError(BotError):
    """An HTTP action failed (timeout, connection, 5xx, a reply that is not JSON)."""


@contextlib.contextmanager
def library_errors(*, file: str = "") -> Iterator[None]:
    """Translate ``retrieval``/``adapters`` errors raised inside the block into bot errors
    (``file``: the definition file a settings error without one is about)."""
    try:
        yield
    except (retrieval_errors.SourceError, adapter_errors.SettingsError) as exc:
        raise ConfigError(exc.reason, file=exc.file or file, path=exc.path,
                          line=exc.line) from exc
    except retrieval_errors.EmbedderError as exc:
        raise ModelError(str(exc)) from exc
    except retrieval_errors.RetrievalError as exc:
        raise RetrievalError(str(exc)) from exc
    except adapter_errors.NotTrainedError as exc:
        raise NotTrainedError(str(exc)) from exc
    except adapter_errors.AdapterError as exc:
        raise ModelError(str(exc)) from exc
