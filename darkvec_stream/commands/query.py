"""The ``darkvec-stream query IP`` subcommand: what one sender is, from the live daemon or a checkpoint.

It asks the running daemon's query API (``--api URL``) or answers from a
saved state (``--state DIR``) through the same ``QueryApi`` code, and prints
the label with its evidence, the cluster, ports and an activity line per
window, or the raw JSON with ``--json``. It never modifies the daemon or the
checkpoint. ``fetch_json`` and ``format_*`` helpers are shared with
``darkvec-stream clusters --api``.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import quote, urlsplit

from darkvec_stream.commands.common import settings_from_args
from darkvec_stream.config import Settings
from darkvec_stream.errors import DarkvecError, InputError

SPARK = " ▁▂▃▄▅▆▇█"
ACTIVITY_WINDOWS_SHOWN = 72
MAX_REPLY_BYTES = 64 * 1024 * 1024


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "query",
        help="show what one sender is: label, evidence, cluster, ports and activity",
        description="Ask the running daemon's query API (or a saved checkpoint) about one sender: its label "
                    "and the labelled neighbours behind it, its cluster, first and last seen, ports, services "
                    "and packets per window.",
    )
    parser.add_argument("ip", metavar="IP", help="sender IPv4 or IPv6 address, for example 192.0.2.1")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--api", metavar="URL", default=None,
                        help="base URL of a running query API (default: http://query.host:query.port "
                             "from the configuration, http://127.0.0.1:9109)")
    source.add_argument("--state", type=Path, metavar="DIR", default=None,
                        help="answer from a saved state instead: the daemon's output directory, its "
                             "checkpoints directory or one checkpoint")
    parser.add_argument("--neighbours", type=int, default=0, metavar="K",
                        help="also list the K most similar senders of any label (default: 0, none)")
    parser.add_argument("--json", action="store_true", help="print the API's JSON reply instead of text")
    parser.add_argument("--timeout-s", type=float, default=10.0, metavar="SECONDS",
                        help="time to wait for the API, in seconds (default: 10)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    target = f"/senders/{quote(args.ip, safe='')}"
    reply = request_json(settings, args.api, args.state, target, args.timeout_s)
    neighbours = None
    if args.neighbours > 0:
        neighbours = request_json(settings, args.api, args.state, f"{target}/neighbours?k={args.neighbours}",
                                  args.timeout_s)
    if args.json:
        print(json.dumps(reply if neighbours is None else {**reply, "neighbours": neighbours["neighbours"]},
                         indent=2))
    else:
        print(format_sender(reply, neighbours))
    return 0


# -- where answers come from ---------------------------------------------------


def request_json(settings: Settings, api: str | None, state: Path | None, target: str,
                 timeout_s: float) -> dict[str, Any]:
    """Answer ``target`` (a path with its query) from a saved state or a query API."""
    if state is not None:
        return answer_from_state(settings, state, target)
    base = api or f"http://{settings.query.host}:{settings.query.port}"
    return fetch_json(base, target, timeout_s)


def answer_from_state(settings: Settings, state: Path, target: str) -> dict[str, Any]:
    """Answer one API request from a checkpoint, with the API's own code and limits."""
    from darkvec_stream.query.api import QueryApi
    from darkvec_stream.query.snapshot import SnapshotPublisher
    from darkvec_stream.query.state import AnalystState

    loaded = AnalystState.from_checkpoint(settings, state)
    publisher = SnapshotPublisher()
    publisher.publish(loaded.embedding, loaded.history, loaded.journal, loaded.labels, loaded.windows_closed)
    api = QueryApi(publisher, max_page_size=settings.query.max_page_size,
                   max_neighbours=settings.query.max_neighbours, evidence_neighbours=settings.knn.k)
    response = api.handle("GET", target)
    if response.status != 200:
        raise InputError(f"{response.body['message']} (in state {state})")
    return response.body


def fetch_json(base: str, target: str, timeout_s: float) -> dict[str, Any]:
    """GET ``base + target`` and return the JSON object; API errors become one-line errors."""
    scheme = urlsplit(base).scheme
    if scheme not in ("http", "https"):
        raise InputError(f"--api {base!r} is not an http:// or https:// URL, for example http://127.0.0.1:9109")
    url = base.rstrip("/") + target
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:  # noqa: S310 (scheme checked above)
            return _decode(reply.read(MAX_REPLY_BYTES + 1), url)
    except urllib.error.HTTPError as error:
        body = _decode(error.read(MAX_REPLY_BYTES + 1), url) if error.fp is not None else {}
        raise InputError(f"{body.get('message', error.reason)} (HTTP {error.code} from {url})") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise DarkvecError(
            f"query API at {base} is not reachable: {reason}; start the daemon with query.enabled=true, "
            "check --api, or answer from a checkpoint with --state DIR"
        ) from None


def _decode(raw: bytes, url: str) -> dict[str, Any]:
    if len(raw) > MAX_REPLY_BYTES:
        raise DarkvecError(f"reply from {url} is larger than {MAX_REPLY_BYTES} bytes: ask for a smaller page")
    try:
        document = json.loads(raw)
    except ValueError:
        raise DarkvecError(f"reply from {url} is not JSON: is --api pointing at a darkvec-stream query API?") from None
    if not isinstance(document, dict):
        raise DarkvecError(f"reply from {url} is not a JSON object")
    return document


# -- text rendering -----------------------------------------------------------


def format_sender(reply: dict[str, Any], neighbours: dict[str, Any] | None = None) -> str:
    """Return the sender reply as aligned lines for a terminal."""
    lines = [f"sender    {reply['sender']}" + ("" if reply["in_model"] else " (not in the model)")]
    lines.append(f"label     {_format_label(reply['label'])}")
    for position, item in enumerate(reply["evidence"]):
        lead = "evidence  " if position == 0 else "          "
        lines.append(f"{lead}{item['sender']:<39} {item['similarity']:.3f}  {item['label']} ({item['source']})")
    if not reply["evidence"]:
        lines.append("evidence  no ground-truth-labelled neighbour")
    cluster = reply["cluster"]
    if cluster is None:
        lines.append("cluster   none in the last clustering run")
    else:
        silhouette = "n/a" if cluster["silhouette"] is None else f"{cluster['silhouette']:.2f}"
        lines.append(f"cluster   {cluster['id']} (silhouette {silhouette})")
    if reply["first_seen"] is not None:
        lines.append(f"seen      {reply['first_seen']} .. {reply['last_seen']}")
        windows = "window" if reply["windows_active"] == 1 else "windows"
        lines.append(f"packets   {reply['packets']} in {reply['windows_active']} {windows} "
                     f"({reply['mirai_packets']} with the Mirai fingerprint)")
    lines.append("ports     " + (" ".join(f"{p['port']}:{p['packets']}" for p in reply["ports"]) or "-"))
    lines.append("services  " + (" ".join(f"{s['service']}:{s['windows']}" for s in reply["services"]) or "-"))
    lines.append(format_activity(reply["activity"]))
    if neighbours is not None:
        lines.append("neighbours")
        for item in neighbours["neighbours"]:
            lines.append(f"          {item['sender']:<39} {item['similarity']:.3f}  {item['label'] or '-'} "
                         f"({item['source'] or 'unlabelled'}), cluster {item['cluster'] or '-'}")
    return "\n".join(lines)


def _format_label(label: dict[str, Any] | None) -> str:
    if label is None:
        return "none (never labelled)"
    if label["ground_truth"]:
        return f"{label['label']} (ground truth from {label['source']})"
    if label["label"] is None:
        return f"none: the kNN vote abstained (top share {label['confidence']:.2f})"
    return f"{label['label']} (kNN vote, confidence {label['confidence']:.2f})"


def format_activity(activity: Sequence[dict[str, Any]]) -> str:
    """Return one character per window, taller for more packets, for the last windows."""
    shown = list(activity)[-ACTIVITY_WINDOWS_SHOWN:]
    if not shown:
        return "activity  no window remembered"
    peak = max(item["packets"] for item in shown)
    marks = "".join(_spark(item["packets"], peak) for item in shown)
    return (f"activity  |{marks}| {len(shown)} windows from {shown[0]['start']}, "
            f"peak {peak} packets per window")


def _spark(packets: int, peak: int) -> str:
    if packets <= 0 or peak <= 0:
        return SPARK[0]
    return SPARK[max(1, round(packets / peak * (len(SPARK) - 1)))]


def format_live_clusters(clusters: Sequence[dict[str, Any]], window_index: int | None, top: int = 5) -> str:
    """Return a fixed-width table of live clusters, largest first."""
    rows = [f"{'cluster':<10} {'size':>6} {'silh.':>6} {'/24s':>5} {'unknown':>7}  {'last change':<12} "
            "top ports / labels"]
    for item in sorted(clusters, key=lambda entry: (-entry["size"], entry["id"])):
        profile = item["profile"]
        silhouette = "n/a" if item["silhouette"] is None else f"{item['silhouette']:.3f}"
        ports = " ".join(str(port) for port, _ in profile.get("top_ports", [])[:top]) or "-"
        known = [f"{label}:{count}" for label, count in profile.get("label_counts", {}).items() if label != "unknown"]
        change = (item.get("last_transition") or {}).get("kind", "-")
        rows.append(f"{item['id']:<10} {item['size']:>6} {silhouette:>6} {profile.get('subnets_24', 0):>5} "
                    f"{profile.get('unknown_share', 0.0):>7.0%}  {change:<12} {ports} / {' '.join(known) or '-'}")
    rows.append(f"{len(clusters)} clusters in the clustering run of window {window_index}.")
    return "\n".join(rows)
