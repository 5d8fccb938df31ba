"""Run an iterator (decoding, usually) in a background thread, a few items ahead of its consumer."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")


def prefetch(it: Iterator[T], depth: int = 6) -> Iterator[T]:
    """Run ``it`` (decoding) in a thread, ``depth`` frames ahead; re-raise its errors here."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def run() -> None:
        try:
            for item in it:
                if stop.is_set():
                    return
                q.put(item)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer
            q.put(e)
        q.put(done)

    t = threading.Thread(target=run, daemon=True, name="facelab-decode")
    t.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while t.is_alive():  # unblock the producer
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.05)
