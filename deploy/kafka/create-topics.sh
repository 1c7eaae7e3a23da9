#!/usr/bin/env sh
# Create the topics darkvec-stream uses on an Apache Kafka (KRaft) cluster.
# One partition for the records topic keeps event-time order exact; with more
# partitions, set windows.lateness_s above the skew between partitions.
# The scale-out topics are created too, and the single daemon ignores them.
# darkvec.records.by-service gets SCALEOUT_PARTITIONS partitions, which is
# the largest number of workers that can share the load. darkvec.sentences
# gets one partition, because one trainer reads it.
set -eu
BOOTSTRAP="${BOOTSTRAP:-127.0.0.1:9092}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"
SCALEOUT_PARTITIONS="${SCALEOUT_PARTITIONS:-4}"

create() {
    "$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists \
        --topic "$1" --partitions "$2" --replication-factor 1
}

create darkvec.records 1
create darkvec.alerts 1
create darkvec.deadletter 1
create darkvec.records.by-service "$SCALEOUT_PARTITIONS"
create darkvec.sentences 1
