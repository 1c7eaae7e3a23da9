"""Which partition of the by-service topic a record belongs to.

A service's records all go to one partition, chosen by the CRC32 of the
service name modulo the partition count, so that a window worker owns whole
services and its sentences are complete. This module maps records to
partitions; it neither reads nor writes Kafka.
"""

from __future__ import annotations

import zlib
from typing import Iterable

import numpy as np

from darkvec_stream.ingest.record import Record
from darkvec_stream.scaleout.settings import check_service_mode
from darkvec_stream.windows.services import KEY_COUNT, ServiceMap, service_key


def service_partition(service: str, partition_count: int) -> int:
    """Return the partition of ``service``: CRC32 of its UTF-8 name modulo ``partition_count``.

    CRC32 rather than ``hash()``, whose salt changes per process, so every
    router and ``replay`` agree.
    """
    if partition_count < 1:
        raise ValueError(f"partition count {partition_count} is invalid: a topic has at least 1 partition")
    return zlib.crc32(service.encode("utf-8")) % partition_count


class ServiceRouter:
    """Map records to services and partitions under a static service map.

    >>> from darkvec_stream.windows import DomainServices
    >>> router = ServiceRouter(DomainServices(), partition_count=4)
    >>> router.service_of(Record(ts_ns=0, src="192.0.2.1", dst_port=23, proto=6))
    'telnet'
    >>> router.partition_of(Record(ts_ns=0, src="192.0.2.1", dst_port=23, proto=6)) == service_partition("telnet", 4)
    True
    """

    def __init__(self, services: ServiceMap, partition_count: int) -> None:
        check_service_mode(services.mode)
        if partition_count < 1:
            raise ValueError(f"partition count {partition_count} is invalid: a topic has at least 1 partition")
        # Static modes ignore the counts, so one plan serves every window.
        self._plan = services.plan(np.zeros(KEY_COUNT), 0)
        self.partition_count = partition_count
        by_service = np.array(
            [service_partition(name, partition_count) for name in self._plan.names], dtype=np.int32
        )
        self._partition_by_key = by_service[self._plan.table]

    @property
    def services(self) -> tuple[str, ...]:
        return self._plan.names

    def service_of(self, record: Record) -> str:
        return self._plan.service_of(service_key(record.proto, record.dst_port))

    def partition_of(self, record: Record) -> int:
        return int(self._partition_by_key[service_key(record.proto, record.dst_port)])

    def split(self, records: Iterable[Record]) -> dict[int, list[Record]]:
        """Group records by partition, keeping their order within each partition."""
        groups: dict[int, list[Record]] = {}
        table = self._partition_by_key
        for record in records:
            partition = int(table[service_key(record.proto, record.dst_port)])
            groups.setdefault(partition, []).append(record)
        return groups

    def services_of_partition(self, partition: int) -> list[str]:
        """Return the service names routed to ``partition``."""
        return [name for name in self._plan.names if service_partition(name, self.partition_count) == partition]
