"""Dynamic batching: the queue's grouping, and batched answers equal to one-at-a-time ones."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from pathlib import Path

import pytest

from adapters.engines.batching import BatchQueue, Job, left_pad
from adapters.engines.generation import DialogueModel, GeneratedAnswer, GenerationRequest
from bot.definition.config import ModelSettings, Persona
from retrieval.documents import Passage

CARD = Passage("card-not-arrived", "Cards arrive within 5-7 working days. After 10 days we send "
               "a new one.", "faq.yaml", title="My card has not arrived")
PIN = Passage("reset-pin", "Open the app, go to Card settings and choose Reset PIN.", "faq.yaml",
              title="How do I reset my PIN?")
TRANSFER = Passage("transfer-time", "Domestic transfers arrive the same day; international ones "
                   "take 1-3 working days.", "faq.yaml", title="How long does a transfer take?")
REQUESTS = [  # different prompt lengths, and one with its own token limit
    GenerationRequest("where is my card?", [CARD, PIN]),
    GenerationRequest("pin?", [PIN]),
    GenerationRequest("how long will an international transfer to my sister abroad take?",
                      [TRANSFER, CARD, PIN], persona=Persona(name="Ava")),
    GenerationRequest("reset pin how", [PIN, TRANSFER], max_new_tokens=3),
]
TOKENS = 8


@pytest.fixture(scope="module")
def serial(random_adapters: list[Path]) -> DialogueModel:
    model = DialogueModel(ModelSettings(max_new_tokens=TOKENS, max_batch=1)).load()
    for n, path in enumerate(random_adapters):
        model.add_adapter(f"bot{n + 1}", path)
    return model


@pytest.fixture(scope="module")
def batched(random_adapters: list[Path]) -> DialogueModel:
    # a generous wait: requests sent together always meet in one batch, even on a busy machine
    model = DialogueModel(ModelSettings(max_new_tokens=TOKENS, max_batch=8,
                                        batch_wait_ms=500)).load()
    for n, path in enumerate(random_adapters):
        model.add_adapter(f"bot{n + 1}", path)
    return model


@pytest.fixture(scope="module")
def alone(serial: DialogueModel) -> list[GeneratedAnswer]:
    return [serial.generate(request) for request in REQUESTS]


def test_queue_groups_by_key_and_caps_the_batch() -> None:
    batches: list[list[str]] = []

    def run(jobs: list[Job[str, str]]) -> None:
        batches.append([job.request for job in jobs])
        for job in jobs:
            job.future.set_result(job.request.upper())

    queue: BatchQueue[str, str] = BatchQueue(run, max_batch=2, wait_s=0.3)
    names = [("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b"), ("a3", "a")]
    futures = [queue.submit(Job(name, key, lambda _delta: None)) for name, key in names]
    assert [f.result(timeout=5) for f in futures] == ["A1", "B1", "A2", "B2", "A3"]
    assert batches == [["a1", "a2"], ["b1", "b2"], ["a3"]]


def test_queue_hands_a_failure_to_every_waiting_job() -> None:
    def run(jobs: list[Job[str, str]]) -> None:
        jobs[0].future.set_result("ok")
        raise RuntimeError("model on fire")

    queue: BatchQueue[str, str] = BatchQueue(run, max_batch=4, wait_s=0.2)
    first, second = (queue.submit(Job(name, None, lambda _delta: None)) for name in "xy")
    assert first.result(timeout=5) == "ok"
    with pytest.raises(RuntimeError, match="on fire"):
        second.result(timeout=5)
    assert queue.submit(Job("z", None, lambda _delta: None)).result(timeout=5) == "ok"  # still up


def test_queue_drops_jobs_cancelled_while_queued() -> None:
    seen: list[str] = []

    def run(jobs: list[Job[str, str]]) -> None:
        for job in jobs:
            seen.append(job.request)
            job.future.set_result(job.request)

    queue: BatchQueue[str, str] = BatchQueue(run, max_batch=4, wait_s=0.3)
    dropped, kept = (queue.submit(Job(name, None, lambda _delta: None)) for name in "xy")
    assert dropped.cancel()
    assert kept.result(timeout=5) == "y"
    assert seen == ["y"]


def test_left_pad() -> None:
    ids, mask = left_pad([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


async def test_concurrent_requests_run_as_one_batch_with_the_same_answers(
        batched: DialogueModel, alone: list[GeneratedAnswer]) -> None:
    together = await asyncio.gather(*(batched.agenerate(r) for r in REQUESTS))
    assert [a.text for a in together] == [a.text for a in alone]
    assert [a.tokens for a in together] == [a.tokens for a in alone]
    assert together[3].tokens <= 3 < together[0].tokens  # each row stops at its own limit
    assert {a.batch_size for a in together} == {len(REQUESTS)}
    assert {a.batch_size for a in alone} == {1}


async def test_requests_for_different_adapters_never_share_a_batch(
        batched: DialogueModel, serial: DialogueModel) -> None:
    names = [None, "bot1", "bot2", "bot1", None, "bot2"]
    requests = [dataclasses.replace(REQUESTS[1], adapter=name) for name in names]
    expected = {name: serial.generate(dataclasses.replace(REQUESTS[1], adapter=name)).text
                for name in set(names)}
    assert len(set(expected.values())) == 3, expected  # each adapter really changes the output
    answers = await asyncio.gather(*(batched.agenerate(r) for r in requests))
    assert [a.text for a in answers] == [expected[name] for name in names]
    assert [a.adapter for a in answers] == names
    assert {a.batch_size for a in answers} == {2}


async def test_cancelling_one_stream_leaves_the_others_intact(
        batched: DialogueModel, alone: list[GeneratedAnswer]) -> None:
    long = dataclasses.replace(REQUESTS[1], max_new_tokens=40)

    async def cancelled() -> GeneratedAnswer | None:
        stream = batched.stream(long)
        await anext(stream)
        await stream.aclose()
        return stream.answer

    async def complete(request: GenerationRequest) -> tuple[str, GeneratedAnswer | None]:
        stream = batched.stream(request)
        text = "".join([delta async for delta in stream])
        return text, stream.answer

    stopped, *finished = await asyncio.gather(cancelled(), complete(REQUESTS[0]),
                                              complete(REQUESTS[2]))
    assert stopped is not None and 0 < stopped.tokens < 40
    for (text, answer), expected in zip(finished, [alone[0], alone[2]], strict=True):
        assert answer is not None and answer.batch_size == 3
        assert text == answer.text == expected.text


async def test_a_timed_out_request_stops_without_harming_its_batch(
        batched: DialogueModel, alone: list[GeneratedAnswer]) -> None:
    slow = dataclasses.replace(REQUESTS[1], max_new_tokens=1000)
    started = time.perf_counter()
    timed_out, answer = await asyncio.gather(
        asyncio.wait_for(batched.agenerate(slow), timeout=1.5), batched.agenerate(REQUESTS[0]),
        return_exceptions=True)
    assert isinstance(timed_out, TimeoutError)
    assert isinstance(answer, GeneratedAnswer) and answer.text == alone[0].text
    assert answer.batch_size == 2
    assert (await batched.agenerate(REQUESTS[0])).text == alone[0].text
    assert time.perf_counter() - started < 30  # the timed-out row did not run 1000 tokens


async def test_cancelling_every_stream_stops_generation(batched: DialogueModel) -> None:
    streams = [batched.stream(dataclasses.replace(r, max_new_tokens=200)) for r in REQUESTS[:2]]
    started = time.perf_counter()
    await asyncio.gather(*(anext(s) for s in streams))
    await asyncio.gather(*(s.aclose() for s in streams))
    assert time.perf_counter() - started < 30
    assert all(s.answer is not None and s.answer.tokens < 200 for s in streams)


def test_one_at_a_time_when_max_batch_is_1(serial: DialogueModel,
                                           alone: list[GeneratedAnswer]) -> None:
    results: list[GeneratedAnswer] = []
    threads = [threading.Thread(target=lambda r=r: results.append(serial.generate(r)))
               for r in REQUESTS[:2]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.text for a in results) == sorted(a.text for a in alone[:2])
    assert {a.batch_size for a in results} == {1}
