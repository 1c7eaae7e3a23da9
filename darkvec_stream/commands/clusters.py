"""The ``darkvec-stream clusters`` subcommand: cluster saved sender vectors and describe each cluster.

It reads vectors from a saved embedding state or a vectors file, optionally
traffic records (for ports, services and activity over time) and label
sources, and writes profiles and silhouettes as JSON, CSV and a text table.
With ``--api URL`` it instead lists the clusters a running daemon tracks,
from its query API. It does not train embeddings or track clusters over time.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from darkvec_stream.clusters.clustering import METHODS, NOISE, Clustering, SenderClusterer
from darkvec_stream.clusters.profile import ClusterProfile, profile_clusters
from darkvec_stream.commands.common import settings_from_args
from darkvec_stream.config import Settings
from darkvec_stream.errors import InputError
from darkvec_stream.ingest.record import Record
from darkvec_stream.windows.model import ClosedWindow, SenderActivity

logger = logging.getLogger(__name__)

NS_PER_S = 1_000_000_000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "clusters",
        help="cluster saved sender vectors and write cluster profiles",
        description="Cluster sender vectors from a saved embedding state or a vectors file and write "
                    "per-cluster profiles (ports, subnets, labels, activity) and silhouettes to --out, "
                    "or list the clusters a running daemon tracks with --api.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--api", metavar="URL",
                        help="list the live clusters of the daemon whose query API is at URL, for example "
                             "http://127.0.0.1:9109 (with --out, also write them to clusters.json)")
    source.add_argument("--state", type=Path, metavar="DIR", help="saved embedding state directory to read vectors from")
    source.add_argument("--vectors", type=Path, metavar="FILE", help="vectors file, CSV or Parquet with ip,v0..vN")
    parser.add_argument("--records", type=Path, metavar="FILE",
                        help="traffic records for ports, services and activity profiles (optional)")
    parser.add_argument("--format", default="record-csv", metavar="NAME",
                        help="input format of --records (default: record-csv)")
    parser.add_argument("--preset", default=None, metavar="NAME",
                        help="column preset of the csv format, for example marx-iptables")
    parser.add_argument("--window-s", type=int, default=3600, metavar="SECONDS",
                        help="window length for the activity-over-time profile, in seconds (default: 3600)")
    parser.add_argument("--labels", type=Path, action="append", default=[], metavar="PATH",
                        help="label source file or directory (repeatable): scanner lists, ip,label CSV")
    # Clustering options default to the clusters section of the
    # configuration, so this command reproduces what the daemon computes.
    parser.add_argument("--method", choices=METHODS, default=None,
                        help="clustering method (default: clusters.method from the configuration, leiden)")
    parser.add_argument("--k", type=int, default=None, metavar="NEIGHBOURS",
                        help="neighbours per sender in the kNN graph (default: clusters.k from the configuration, 10)")
    parser.add_argument("--resolution", type=float, default=None,
                        help="modularity resolution; higher gives smaller clusters "
                             "(default: clusters.resolution from the configuration, 0.5)")
    parser.add_argument("--min-similarity", type=float, default=None, metavar="COSINE",
                        help="drop graph edges below this cosine similarity "
                             "(default: clusters.min_similarity from the configuration, 0.5)")
    parser.add_argument("--min-cluster-size", type=int, default=None, metavar="SENDERS",
                        help="smaller clusters are reported as noise, in senders "
                             "(default: clusters.min_cluster_size from the configuration, 5)")
    parser.add_argument("--seed", type=int, default=None,
                        help="random seed of the community detection (default: clusters.seed from the configuration, 15)")
    parser.add_argument("--focus", action="append", default=[], metavar="CIDR",
                        help="report which clusters hold the senders of this prefix (repeatable), "
                             "for example 141.212.0.0/16")
    parser.add_argument("--top", type=int, default=5, metavar="N",
                        help="entries per top-N list in profiles, such as ports and subnets (default: 5)")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="directory to write results into (required unless --api is given)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.api is not None:
        return _list_live(args)
    if args.out is None:
        raise InputError("--out DIR is required when clustering --state or --vectors; "
                         "give a directory to write the results into")
    focus = [_parse_prefix(text) for text in args.focus]
    clusterer = clusterer_from_args(args, settings_from_args(args))
    keys, vectors = _load_vectors(args)
    windows = _load_windows(args.records, args.format, args.preset, args.window_s, set(keys)) if args.records else []
    labels = _load_labels(args.labels, keys) if args.labels else {}

    clustering = clusterer.cluster(keys, vectors)
    profiles = profile_clusters(clustering, windows, labels, top_count=args.top)
    args.out.mkdir(parents=True, exist_ok=True)
    write_results(args.out, clustering, profiles, labels, focus)
    logger.info("clustered %s senders into %s clusters (%s noise), results in %s",
                len(keys), clustering.n_clusters, len(clustering.noise), args.out)
    print(format_table(clustering, profiles))
    for prefix in focus:
        print(format_focus(prefix, clustering))
    return 0


def _list_live(args: argparse.Namespace) -> int:
    from darkvec_stream.commands.query import fetch_json, format_live_clusters

    settings_from_args(args)
    clusters: list[dict[str, Any]] = []
    # The server's default page size is within its own limit; follow "next" for the rest.
    target: str | None = "/clusters"
    window_index = None
    while target is not None:
        page = fetch_json(args.api, target, timeout_s=30.0)
        clusters.extend(page["items"])
        window_index = page.get("window_index")
        target = page["next"]
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        document = {"source": args.api, "window_index": window_index, "clusters": clusters}
        (args.out / "clusters.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    print(format_live_clusters(clusters, window_index, top=args.top))
    return 0


def clusterer_from_args(args: argparse.Namespace, settings: Settings) -> SenderClusterer:
    """Build the clusterer from the options given, and the configuration for the rest."""
    configured = settings.clusters
    return SenderClusterer(
        method=_given(args.method, configured.method),
        k=_given(args.k, configured.k),
        resolution=_given(args.resolution, configured.resolution),
        min_similarity=_given(args.min_similarity, configured.min_similarity),
        min_cluster_size=_given(args.min_cluster_size, configured.min_cluster_size),
        seed=_given(args.seed, configured.seed),
    )


def _given(option: Any, configured: Any) -> Any:
    # ``is None``, not ``or``: an explicit 0 (seed, resolution) is a choice.
    return configured if option is None else option


def _parse_prefix(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError as error:
        raise InputError(f"--focus {text!r} is not a CIDR prefix such as 141.212.0.0/16") from error


def _load_vectors(args: argparse.Namespace) -> tuple[list[str], np.ndarray]:
    if args.state is not None:
        from darkvec_stream.checkpoint.locate import stage_directory
        from darkvec_stream.embedding import SenderEmbedding

        embedding = SenderEmbedding.load(stage_directory(args.state, "embedding"))
        keys, vectors = embedding.vectors(embedding.keys())
    else:
        from darkvec_stream.labels.export import read_vectors

        keys, vectors = read_vectors(args.vectors)
    if not keys:
        raise InputError("no sender vectors found: check --state or --vectors")
    return list(keys), np.asarray(vectors, dtype=np.float32)


def _load_labels(paths: Sequence[Path], keys: Sequence[str]) -> dict[str, str]:
    from darkvec_stream.labels import LabelBook

    return LabelBook.from_paths(paths).labelled(keys)


def _load_windows(path: Path, format: str, preset: str | None, window_s: int, senders: set[str]) -> list[ClosedWindow]:
    """Aggregate the records of the clustered senders into per-window activity."""
    from darkvec_stream.ingest import read_file

    if window_s <= 0:
        raise InputError(f"--window-s must be positive, got {window_s}")
    options = {"preset": preset} if preset else {}
    window_ns = window_s * NS_PER_S
    activity: dict[int, dict[str, SenderActivity]] = {}
    rejected = 0
    for item in read_file(path, format, **options):
        if not isinstance(item, Record):
            rejected += 1
            continue
        if item.src not in senders:
            continue
        _add_record(activity.setdefault(item.ts_ns // window_ns, {}), item)
    if rejected:
        logger.warning("skipped %s records of %s that could not be decoded", rejected, path)
    return [
        ClosedWindow(index, index * window_ns, (index + 1) * window_ns, (), senders_active,
                     sum(a.packets for a in senders_active.values()), len(senders_active), 0)
        for index, senders_active in sorted(activity.items())
    ]


def _add_record(window_activity: dict[str, SenderActivity], record: Record) -> None:
    activity = window_activity.get(record.src)
    if activity is None:
        activity = window_activity[record.src] = SenderActivity(first_ns=record.ts_ns, last_ns=record.ts_ns)
    activity.packets += record.packets
    activity.first_ns = min(activity.first_ns, record.ts_ns)
    activity.last_ns = max(activity.last_ns, record.ts_ns)
    if record.dst_port is not None:
        activity.dst_ports[record.dst_port] = activity.dst_ports.get(record.dst_port, 0) + record.packets
        protocol = {6: "tcp", 17: "udp"}.get(record.proto or 0, str(record.proto))
        activity.services.add(f"{protocol}/{record.dst_port}")
    if record.mirai:
        activity.mirai_packets += record.packets


def write_results(
    out: Path, clustering: Clustering, profiles: dict[int, ClusterProfile], labels: dict[str, str],
    focus: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> None:
    """Write clusters.json, senders.csv and clusters.txt into ``out``."""
    document = {
        "method": clustering.method,
        "parameters": clustering.parameters,
        "silhouette_method": clustering.silhouette_method,
        "senders": len(clustering.keys),
        "clusters": [profiles[label].to_json() for label in sorted(profiles)],
        "noise": len(clustering.noise),
        "focus": {str(prefix): _focus_counts(prefix, clustering) for prefix in focus},
    }
    (out / "clusters.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    lines = ["ip,cluster,silhouette,label"]
    for key, label, silhouette in zip(clustering.keys, clustering.labels.tolist(), clustering.silhouettes.tolist()):
        value = "" if np.isnan(silhouette) else f"{silhouette:.6f}"
        lines.append(f"{key},{label},{value},{labels.get(key, '')}")
    (out / "senders.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (out / "clusters.txt").write_text(format_table(clustering, profiles) + "\n", encoding="utf-8")


def format_table(clustering: Clustering, profiles: dict[int, ClusterProfile]) -> str:
    """Return a fixed-width table of the clusters, best mean silhouette first."""
    header = f"{'cluster':>7} {'size':>6} {'silh.':>6} {'/24s':>5} {'/16s':>5} {'unknown':>7}  top ports / labels"
    rows = [header]
    ranked = sorted(profiles.values(), key=lambda p: (-(p.silhouette if p.silhouette == p.silhouette else -2), p.cluster))
    for profile in ranked:
        ports = " ".join(str(port) for port, _ in profile.top_ports) or "-"
        known = [f"{label}:{count}" for label, count in profile.label_counts.items() if label != "unknown"]
        rows.append(f"{profile.cluster:>7} {profile.size:>6} {profile.silhouette:>6.3f} {profile.subnets_24:>5} "
                    f"{profile.subnets_16:>5} {profile.unknown_share:>7.0%}  {ports} / {' '.join(known) or '-'}")
    rows.append(f"{len(clustering.noise)} senders are noise (clusters under the minimum size).")
    return "\n".join(rows)


def _focus_counts(prefix: ipaddress.IPv4Network | ipaddress.IPv6Network, clustering: Clustering) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for key, label in zip(clustering.keys, clustering.labels.tolist()):
        try:
            inside = ipaddress.ip_address(key) in prefix
        except ValueError:
            continue
        if inside:
            counts["noise" if label == NOISE else str(label)] += 1
    return dict(counts.most_common())


def format_focus(prefix: ipaddress.IPv4Network | ipaddress.IPv6Network, clustering: Clustering) -> str:
    """Return one line saying which clusters hold the senders of ``prefix``."""
    counts = _focus_counts(prefix, clustering)
    if not counts:
        return f"{prefix}: no clustered sender in this prefix"
    parts = ", ".join(f"cluster {label}: {count}" for label, count in counts.items())
    return f"{prefix}: {sum(counts.values())} senders; {parts}"
