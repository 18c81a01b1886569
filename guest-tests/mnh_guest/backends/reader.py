"""The read loop both backends share: drain a non-blocking descriptor with a deadline."""

from __future__ import annotations

import os
import select
import time
from collections.abc import Callable

CHUNK = 65536        # bytes per read(); both queues hand out whole records
POLL_STEP = 0.05     # s: the longest select() before the deadline is looked at again


def read_until(fd: int, deadline: float, want: int, count: Callable[[bytes], int]) -> bytes:
    """Read ``fd`` until it is empty and ``want`` records came, or ``deadline`` passed.

    ``count(chunk)`` says how many records a chunk holds (decode problems excluded), so
    the loop stops as soon as what the oracle expects has arrived and the queue is empty.
    """
    chunks: list[bytes] = []
    got = 0
    while True:
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            data = b""
        if data:
            chunks.append(data)
            got += count(data)
            continue
        remaining = deadline - time.monotonic()
        if got >= want or remaining <= 0:
            return b"".join(chunks)
        select.select([fd], [], [], min(remaining, POLL_STEP))
