"""Shared pytest fixtures: one embedded Kafka-protocol broker per test session.

Tests that use ``kafka_broker`` must carry ``@pytest.mark.broker``. Give each
test its own topic (``unique_topic``) and consumer group, because the broker
is shared by the whole session.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest

from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka import testing as kafka_testing

# Every daemon a test starts would otherwise bind the query API's default
# port, so two test runs on one machine (or a developer's daemon) would clash.
os.environ.setdefault("DARKVEC_STREAM_QUERY__PORT", "0")


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[EmbeddedBroker]:
    """One Tansu broker on 127.0.0.1 for the session, stopped at the end."""
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture
def unique_topic(request: pytest.FixtureRequest) -> str:
    """A topic name no other test uses: the test name plus a random suffix."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:80]
    return f"{stem}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def kafka_io(kafka_broker: EmbeddedBroker) -> kafka_testing.KafkaIO:
    """Quick ``produce(topic, values)`` / ``consume(topic, count)`` on the session broker."""
    return kafka_testing.KafkaIO(kafka_broker.bootstrap_servers)
