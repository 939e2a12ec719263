"""Dynamic batching for the dialogue model: a request queue and a per-row streamer.

:class:`BatchQueue` hands queued jobs to one worker thread in batches: it waits up to
``wait_s`` after the oldest job arrived (or until ``max_batch`` jobs with its key are
queued), then runs them together. Jobs with different keys (adapters) never share a batch.
The worker thread exists only while jobs are queued or running.

:class:`BatchStreamer` is the ``streamer`` of one batched ``generate``: it receives a
``[batch]`` tensor of new tokens per step and decodes each row into text deltas for that
row's callback, stopping a row at its stop tokens, its own token limit or its cancel event
(later tokens of that row are padding); a finished row is reported at once, so its caller
need not wait for the longest row. :meth:`BatchStreamer.criterion` tells ``generate`` the
same, so a row that is done stops and generation ends when every row is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

R = TypeVar("R")
A = TypeVar("A")


@dataclass(eq=False)
class Job(Generic[R, A]):
    """One queued request, its text callback, cancel flag and the future of its answer."""

    request: R
    key: str | None  # jobs with different keys never share a batch
    on_delta: Callable[[str], None]
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future[A] = field(default_factory=Future)
    enqueued: float = field(default_factory=time.perf_counter)


class BatchQueue(Generic[R, A]):
    """Collects jobs and runs them in batches of one key on a single worker thread.

    ``run(jobs)`` must resolve every job's future; if it raises, the jobs it left
    unresolved get that exception. A job whose future was cancelled while queued is dropped.
    """

    def __init__(self, run: Callable[[list[Job[R, A]]], None], *, max_batch: int,
                 wait_s: float) -> None:
        self._run = run
        self.max_batch = max(1, max_batch)
        self.wait_s = max(0.0, wait_s)
        self._jobs: list[Job[R, A]] = []
        self._ready = threading.Condition()
        self._working = False

    def submit(self, job: Job[R, A]) -> Future[A]:
        with self._ready:
            self._jobs.append(job)
            self._ready.notify()
            if not self._working:
                self._working = True
                threading.Thread(target=self._work, name="dialogue-batcher", daemon=True).start()
        return job.future

    def _next_batch(self) -> list[Job[R, A]] | None:
        """The oldest job plus up to ``max_batch - 1`` more with its key (None: queue empty)."""
        with self._ready:
            while True:
                if not self._jobs:
                    self._working = False
                    return None
                key = self._jobs[0].key
                batch = [job for job in self._jobs if job.key == key][:self.max_batch]
                left = self._jobs[0].enqueued + self.wait_s - time.perf_counter()
                if len(batch) >= self.max_batch or left <= 0:
                    self._jobs = [job for job in self._jobs if job not in batch]
                    # from here on a caller can no longer cancel the future (only the job)
                    return [job for job in batch if job.future.set_running_or_notify_cancel()]
                self._ready.wait(left)

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            if not batch:
                continue  # every job in it was cancelled by its caller
            try:
                self._run(batch)
            except BaseException as exc:  # hand the failure to the waiting callers
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[Any, Any]:
    """``input_ids`` and ``attention_mask`` tensors with ``prompts`` padded on the left."""
    import torch

    width = max(len(ids) for ids in prompts)
    input_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, ids in enumerate(prompts):
        if ids:
            input_ids[row, width - len(ids):] = torch.as_tensor(ids, dtype=torch.long)
            mask[row, width - len(ids):] = 1
    return input_ids, mask


class RowStream:
    """One row of a batch: decodes its tokens into text deltas for ``on_text``.

    The row is done at a stop token, at ``limit`` tokens or once ``cancel`` is set;
    ``on_done(row)`` is then called once, while the rest of the batch may still run.
    """

    def __init__(self, tokenizer: Any, on_text: Callable[[str], None],
                 on_done: Callable[[RowStream], None], *, limit: int,
                 cancel: threading.Event) -> None:
        self.tokenizer = tokenizer
        self.on_text = on_text
        self.on_done = on_done
        self.limit = limit
        self.cancel = cancel
        self.ids: list[int] = []
        self.shown = 0
        self.done = False
        self.first_token_at: float | None = None

    def add(self, token: int, stops: Collection[int]) -> None:
        if self.done:
            return  # padding after this row finished
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.ids.append(token)
        self._flush(final=False)
        if token in stops or len(self.ids) >= self.limit or self.cancel.is_set():
            self.finish()

    def finish(self) -> None:
        """Flush the text held back and report the row done (once)."""
        if not self.done:
            self.done = True
            self._flush(final=True)
            self.on_done(self)

    def _flush(self, *, final: bool) -> None:
        text = self.tokenizer.decode(self.ids, skip_special_tokens=True,
                                     clean_up_tokenization_spaces=False)
        if not final and text.endswith("\ufffd"):
            return  # an incomplete UTF-8 character: wait for the next token
        if len(text) > self.shown:
            delta, self.shown = text[self.shown:], len(text)
            self.on_text(delta)


class BatchStreamer:
    """A ``generate`` streamer for a batch: one :class:`RowStream` per row."""

    def __init__(self, rows: Sequence[RowStream], stops: Collection[int]) -> None:
        self.rows = list(rows)
        self.stops = frozenset(stops)
        self.prompt_seen = False

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # generate first puts the prompt
            self.prompt_seen = True
            return
        for row, token in zip(self.rows, value.reshape(-1).tolist(), strict=True):
            row.add(int(token), self.stops)

    def end(self) -> None:
        for row in self.rows:
            row.finish()

    def criterion(self, prompt_width: int) -> Any:
        """A stopping criterion: a row is done at its limit or once cancelled (EOS: config)."""
        import torch
        from transformers import StoppingCriteria

        limits = torch.tensor([row.limit for row in self.rows])
        cancels = [row.cancel for row in self.rows]

        class RowsDone(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                done = limits <= input_ids.shape[1] - prompt_width
                done |= torch.tensor([cancel.is_set() for cancel in cancels])
                return done.to(input_ids.device)

        return RowsDone()
