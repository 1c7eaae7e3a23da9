"""Scale-out over Kafka partitions: routers, window workers and one trainer.

Records are partitioned by service, so each window worker owns whole
services and publishes per-partition window parts to a sentences topic; one
trainer merges the parts of each window and runs the model, labels and
clusters. Kafka consumer groups move partitions between instances; this
package builds no cluster manager of its own. See ``docs/scaling.md``.
"""

from darkvec_stream.scaleout.assembly import ReadyWindow, WindowAssembler, merge_parts
from darkvec_stream.scaleout.messages import PROGRESS, PART, SCHEMA_VERSION, Progress, WindowPart
from darkvec_stream.scaleout.routing import ServiceRouter, service_partition
from darkvec_stream.scaleout.settings import ScaleoutSettings, check_service_mode

__all__ = [
    "PART",
    "PROGRESS",
    "SCHEMA_VERSION",
    "Progress",
    "ReadyWindow",
    "ScaleoutSettings",
    "ServiceRouter",
    "WindowAssembler",
    "WindowPart",
    "check_service_mode",
    "merge_parts",
    "service_partition",
]
