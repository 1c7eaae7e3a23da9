#!/usr/bin/env sh
# Create the topics darkvec-stream uses on an Apache Kafka (KRaft) cluster.
# One partition for the records topic keeps event-time order exact; with more
# partitions, set windows.lateness_s above the skew between partitions.
set -eu
BOOTSTRAP="${BOOTSTRAP:-127.0.0.1:9092}"
KAFKA_BIN="${KAFKA_BIN:-/opt/kafka/bin}"
"$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic darkvec.records --partitions 1 --replication-factor 1
"$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic darkvec.alerts --partitions 1 --replication-factor 1
"$KAFKA_BIN/kafka-topics.sh" --bootstrap-server "$BOOTSTRAP" --create --if-not-exists --topic darkvec.deadletter --partitions 1 --replication-factor 1
