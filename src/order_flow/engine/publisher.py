"""Publishing outbox jobs after commit. The relay re-publishes what this misses."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRef:
    id: int
    instance_id: int
    step: str
    queue: str
    idempotency_key: str


class Publisher(Protocol):
    def publish(self, jobs: list[JobRef]) -> bool:
        """Hand the jobs to the broker; True if they were sent (then marked published)."""
        ...


class NullPublisher:
    """Publishes nothing: the jobs stay pending for the relay to pick up."""

    def publish(self, jobs: list[JobRef]) -> bool:
        return False


class RecordingPublisher:
    """Keeps what it was asked to publish (tests); the rows stay pending."""

    def __init__(self) -> None:
        self.published: list[JobRef] = []

    def publish(self, jobs: list[JobRef]) -> bool:
        self.published.extend(jobs)
        return False
