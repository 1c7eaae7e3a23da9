"""``darkvec-stream demo``: the whole pipeline on a laptop, with no Kafka installed.

It starts the embedded broker, fills a topic with simulated telescope traffic
(or replays the files given), runs the daemon until the topic is drained, and
prints what it found beside the simulator's truth. It is a showcase and a
smoke test, not a benchmark.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from darkvec_stream.commands.common import settings_from_args
from darkvec_stream.config import Settings
from darkvec_stream.daemon import Daemon, RunSummary
from darkvec_stream.errors import InputError
from darkvec_stream.kafka import EmbeddedBroker
from darkvec_stream.kafka.replay import replay
from darkvec_stream.labels import KnnLabeller, leave_one_out
from darkvec_stream.simulate import SimulationConfig, Truth, load_truth, write_simulation

logger = logging.getLogger(__name__)

MARKER = ".darkvec-demo"
TOPIC = "darkvec.demo.records"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="simulate (or replay) traffic through an embedded broker and show what the daemon finds",
        description="Start an embedded Kafka-compatible broker on 127.0.0.1, produce simulated "
        "telescope traffic (or the given files) into it, run the daemon until the topic is drained, "
        "then print windows, labels with their evaluation, clusters, alerts and output files.",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="replay these files instead of simulating")
    parser.add_argument("--format", default="record-csv", help="format of FILE (default: record-csv)")
    parser.add_argument("--preset", default=None, help="decoder preset of FILE, e.g. marx-iptables for csv")
    parser.add_argument("--days", type=float, default=3.0, help="simulated days (default: 3)")
    parser.add_argument(
        "--scale", type=float, default=0.05,
        help="simulated sender count as a share of a 2021 /24 telescope (default: 0.05)",
    )
    parser.add_argument("--seed", type=int, default=7, help="simulation seed (default: 7)")
    parser.add_argument(
        "--out", type=Path, default=Path("demo-out"),
        help="directory for every file the demo writes; emptied first (default: demo-out)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    out = _fresh_directory(args.out)
    started = time.monotonic()
    truth: Truth | None = None
    if args.files:
        files = [Path(name) for name in args.files]
        labels_path = None
    else:
        print(f"[1/4] simulating {args.days:g} days of a /24 telescope (scale {args.scale:g}, seed {args.seed})")
        config = SimulationConfig(days=args.days, scale=args.scale, seed=args.seed)
        result = write_simulation(config, out / "simulation")
        files = list(result.traffic_files)
        truth = load_truth(out / "simulation")
        labels_path = out / "simulation" / "labels.csv"

    with EmbeddedBroker() as broker:
        print(f"[2/4] embedded broker on {broker.bootstrap_servers}; replaying {len(files)} file(s) into {TOPIC}")
        options = {"preset": args.preset} if args.preset else {}
        fmt = args.format if args.files else "record-csv"
        summary = replay(files, TOPIC, broker.bootstrap_servers, format=fmt, decoder_options=options, progress=True)
        print(summary.render())

        print("[3/4] running the daemon until the topic is drained")
        settings = _settings(args, broker.bootstrap_servers, out, labels_path)
        daemon = Daemon(settings)
        run_summary = daemon.run_kafka(exit_when_idle_s=5.0, flush_at_exit=True)

    print("[4/4] results")
    print(render_report(daemon, run_summary, truth, out, time.monotonic() - started))
    return 0


def _fresh_directory(path: Path) -> Path:
    if path.exists() and any(path.iterdir()):
        if not (path / MARKER).exists():
            raise InputError(
                f"demo output directory {path} is not empty and was not written by the demo; "
                "choose another with --out"
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / MARKER).write_text("written by darkvec-stream demo; emptied on the next demo run\n")
    return path


def _settings(args: argparse.Namespace, bootstrap: str, out: Path, labels_path: Path | None) -> Settings:
    overrides = [
        f"kafka.bootstrap_servers={bootstrap}",
        f"kafka.topic={TOPIC}",
        f"kafka.group_id=darkvec-demo-{int(time.time())}",
        f"output.directory={out / 'run'}",
        "metrics.port=0",
        "query.port=0",
    ]
    if labels_path is not None:
        overrides.append("labels.sources=[{name: operator-list, path: '%s'}]" % labels_path)
    return settings_from_args(args, overrides)


def render_report(daemon: Daemon, summary: RunSummary, truth: Truth | None, out: Path, seconds: float) -> str:
    pipeline = daemon.pipeline
    assert pipeline is not None
    lines = [
        "",
        f"windows processed: {len(summary.windows)}; records {summary.records_read:,} "
        f"(accepted {summary.records_accepted:,}, rejected {summary.records_rejected:,}); "
        f"checkpoints {summary.checkpoints}; {seconds:.0f} s in all",
        f"senders embedded: {len(pipeline.embedding):,}; in the index: {len(pipeline.index):,}",
        "",
        "labels of active senders (ground truth, Mirai fingerprint, kNN):",
    ]
    counts = Counter(value.label or "(abstained)" for value in pipeline.sender_labels.values())
    lines.extend(f"  {label:<24} {count:>7,}" for label, count in counts.most_common(15))
    if truth is not None:
        lines.extend(["", _evaluation(pipeline, truth)])
    lines.extend(["", *_clusters(pipeline, truth)])
    lines.extend(["", *_alerts(out / "run" / "alerts.jsonl", truth)])
    lines.extend(["", "output files:"])
    lines.extend(f"  {path}" for path in sorted(out.rglob("*")) if path.is_file() and "ckpt-" not in str(path))
    lines.append(f"  {out / 'run' / 'checkpoints'}/ (checkpoints, newest last)")
    return "\n".join(lines)


def _evaluation(pipeline: Any, truth: Truth) -> str:
    # Truth for evaluation: every scanner organisation and the Mirai-like
    # botnet, whether or not the operator's list knew the sender.
    keys = pipeline.embedding.keys()
    labels = {}
    for sender in keys:
        row = truth.senders.get(sender)
        if row is not None and (row.kind == "scanner" or row.group == "mirai"):
            labels[sender] = row.group
    if len(labels) < 2:
        return "evaluation: too few labelled senders embedded"
    senders, vectors = pipeline.embedding.vectors(keys)
    report = leave_one_out(senders, vectors, labels, KnnLabeller(), include_unknown=True, max_unknown=2000)
    return "leave-one-out evaluation against the simulator's truth (true majority vote):\n" + report.to_text()


def _clusters(pipeline: Any, truth: Truth | None) -> list[str]:
    update = pipeline.last_clusters
    if update is None:
        return ["clusters: none yet (clustering runs every clusters.every_windows windows)"]
    lines = [f"clusters after window {update.window_index}: {len(update.profiles)} (largest first)"]
    members = update.clustering.clusters()
    ranked = sorted(update.profiles.items(), key=lambda item: -item[1].size)[:12]
    for cluster_id, profile in ranked:
        ports = ", ".join(str(port) for port, _ in profile.top_ports[:4])
        line = (f"  {cluster_id:<8} size {profile.size:>5}  silhouette {profile.silhouette:+.2f}  "
                f"/24s {profile.subnets_24:>4}  ports {ports}")
        if truth is not None:
            local = _local_label(update, cluster_id)
            groups = Counter(truth.group_of(sender) or "?" for sender in members.get(local, ()))
            if groups:
                group, count = groups.most_common(1)[0]
                line += f"  truth: {group} {count / sum(groups.values()):.0%}"
        lines.append(line)
    return lines


def _local_label(update: Any, cluster_id: str) -> int | None:
    for local, global_id in update.tracking.ids.items():
        if global_id == cluster_id:
            return local
    return None


def _alerts(path: Path, truth: Truth | None) -> list[str]:
    lines_read = path.read_text().splitlines() if path.exists() else []
    alerts = [json.loads(line) for line in lines_read if line.strip()]
    lines = [f"alerts raised: {len(alerts)} " + str(dict(Counter(alert["type"] for alert in alerts)))]
    if not alerts:
        lines.append("  (cluster alerts start after alerts.warmup_windows clustering runs, 24 by default)")
    for alert in alerts[:15]:
        line = f"  {alert['window_start'][:16]} {alert['type']:<18} {alert.get('cluster_id') or alert.get('sender')}: {alert['summary']}"
        if truth is not None:
            groups = Counter(truth.group_of(sender) or "?" for sender in alert["sample_members"])
            line += f"  [truth of sample: {dict(groups.most_common(2))}]"
        lines.append(line)
    if truth is not None:
        lines.append("simulated events: " + "; ".join(
            f"{event['type']} {event['group']} at {event['time'][:16]}" for event in truth.events))
    return lines
