"""Quality and cost of the streaming pipeline against the published DarkVec and i-DarkVec recipes.

One command simulates a seeded /24 with exact truth, runs it through the real
pipeline, trains the published recipes on the same sentences, and prints
side-by-side tables: label quality, cluster quality, alerts on simulated
events and cost. It changes no stage code; the figures go to
docs/benchmarks/quality.md by hand.

    python -m bench.bench_quality                  # 2 days, scale 0.02 (a few minutes)
    python -m bench.bench_quality --full           # 7 days, scale 0.05, plus scaling runs
    python -m bench.bench_quality --real           # also the marx capture (shared data)
    python -m bench.bench_quality --days 30 --scale 0.03 --alerts-only   # alerts of both runs only
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from bench.baselines import TrainedVectors, darkvec_batch, gensim_per_window, idarkvec_daily
from bench.quality_data import simulate, simulation_config
from bench.quality_eval import (
    AlertScores,
    ClusterScores,
    LabelScores,
    labellers,
    score_alerts,
    score_clustering,
    score_labels,
    score_pipeline_labels,
)
from bench.quality_pipeline import PipelineRun, percentile_ms, run_pipeline
from darkvec_stream.clusters.clustering import SenderClusterer
from darkvec_stream.config import Settings

logger = logging.getLogger(__name__)

DAY_S = 86_400
SHARED_DATA = Path("/work/shared/data")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=2.0, help="simulated days (default 2)")
    parser.add_argument("--scale", type=float, default=0.02, help="simulator sender scale (default 0.02)")
    parser.add_argument("--seed", type=int, default=1, help="simulator seed (default 1)")
    parser.add_argument("--full", action="store_true", help="7 days at scale 0.05 and the scaling runs")
    parser.add_argument("--scaling", action="store_true", help="add telescope-size and window-length runs")
    parser.add_argument("--scaling-scale", type=float, default=0.02, help="scale of the scaling runs")
    parser.add_argument("--real", action="store_true", help="run the marx capture from the shared data")
    parser.add_argument("--data", type=Path, default=SHARED_DATA, help="shared data directory (for --real)")
    parser.add_argument("--batch-epochs", type=int, default=20, help="epochs of the DarkVec batch recipe")
    parser.add_argument("--work", type=Path, default=Path("/tmp/darkvec-quality"),
                        help="directory for simulations and pipeline outputs (default /tmp/darkvec-quality)")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON to this file")
    parser.add_argument("--alerts-only", action="store_true",
                        help="run the event and stable pipelines and score their alerts; skip the recipes")
    args = parser.parse_args(argv)
    if args.full:
        args.days, args.scale, args.scaling = 7.0, 0.05, True
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "machine": machine()}
    print(f"# darkvec-stream quality benchmark: {args.days:g} days, scale {args.scale:g}, seed {args.seed}, "
          f"/24 (198.51.100.0/24); {results['machine']}\n")

    # 1. One simulation with both events, through the real pipeline.
    work = args.work
    truth = simulate(work / "sim", simulation_config(args.days, args.scale, args.seed))
    run = run_pipeline(work / "sim", work / "out")
    print(f"pipeline: {run.records:,} records, {len(run.windows)} windows, {len(run.pipeline.embedding):,} "
          f"senders embedded, {run.total_s:.1f} s end to end\n")

    # 2. The published recipes on the same sentences, timed in the same process.
    if not args.alerts_only:
        recipes = train_recipes(run, args.batch_epochs)
        results["cost"] = cost_section(run, recipes["gensim per window (bare)"])
        results["labels"] = label_section(run, recipes, truth)
        results["clusters"] = cluster_section(run, recipes, truth)

    # 3. Alerts on the event run, then on a stable run without events.
    stable_truth = simulate(work / "sim-stable", simulation_config(args.days, args.scale, args.seed, stable=True))
    stable = run_pipeline(work / "sim-stable", work / "out-stable")
    results["alerts"] = alert_section(run, truth, stable, stable_truth)

    if args.scaling and not args.alerts_only:
        results["scaling"] = scaling_section(work, args.scaling_scale, args.seed)
    if args.real:
        results["real"] = real_section(args.data, work / "out-real")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")


def machine() -> str:
    import os

    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {platform.machine()}"


def train_recipes(run: PipelineRun, batch_epochs: int) -> dict[str, TrainedVectors]:
    """Train every published recipe on the windows the pipeline closed, one after the other."""
    embedding = run.settings.embedding
    return {
        "darkvec batch c25 d50": darkvec_batch(run.windows, epochs=batch_epochs, seed=embedding.seed),
        "i-darkvec daily c5 d200": idarkvec_daily(run.windows, vector_size=200, context=5, seed=embedding.seed),
        "i-darkvec daily c25 d50": idarkvec_daily(run.windows, vector_size=50, context=25, seed=embedding.seed),
        "gensim per window (bare)": gensim_per_window(
            run.windows, vector_size=embedding.vector_size, context=embedding.context,
            epochs=embedding.epochs_per_window, alpha_start=embedding.alpha_start,
            alpha_end=embedding.alpha_end, seed=embedding.seed),
    }


def streaming_vectors(run: PipelineRun, senders: list[str]) -> np.ndarray:
    found, vectors = run.pipeline.embedding.vectors(senders)
    assert found == senders, "every evaluated sender must be in the streaming model"
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


# -- sections --------------------------------------------------------------


def cost_section(run: PipelineRun, bare: TrainedVectors) -> dict[str, Any]:
    embedding_s = sum(run.embedding_s)
    gensim_s = sum(run.gensim_train_s)
    process_s = sum(run.process_s)
    figures = {
        "windows": len(run.windows),
        "records": run.records,
        "words_trained": run.words_trained,
        "pipeline_total_s": run.total_s,
        "decode_and_window_s": run.total_s - process_s,
        "process_window_s": process_s,
        "embedding_s": embedding_s,
        "gensim_train_in_pipeline_s": gensim_s,
        "bare_gensim_s": bare.seconds,
        "bare_gensim_vocabulary_s": bare.vocabulary_s,
        "window_p50_ms": percentile_ms(run.process_s, 0.5),
        "window_p95_ms": percentile_ms(run.process_s, 0.95),
        "window_max_ms": percentile_ms(run.process_s, 1.0),
        "embedding_p50_ms": percentile_ms(run.embedding_s, 0.5),
        "embedding_p95_ms": percentile_ms(run.embedding_s, 0.95),
        "words_per_s_gensim": run.words_trained / gensim_s if gensim_s else 0.0,
        "words_per_s_end_to_end": run.words_trained / run.total_s if run.total_s else 0.0,
        "ratio_end_to_end_vs_bare_gensim": run.total_s / bare.seconds if bare.seconds else 0.0,
        "ratio_embedding_vs_bare_gensim": embedding_s / bare.seconds if bare.seconds else 0.0,
    }
    print("## Cost of the streaming pipeline (same run)\n")
    print("| figure | value |\n|---|---|")
    print(f"| windows / records / words trained | {len(run.windows)} / {run.records:,} / {run.words_trained:,} |")
    print(f"| end to end (decode, window, embed, index, label, cluster, alert) | {run.total_s:.1f} s |")
    print(f"| of which decode and windowing | {figures['decode_and_window_s']:.1f} s |")
    print(f"| of which embedding update (vocabulary, train, compaction) | {embedding_s:.1f} s |")
    print(f"| of which label, index, cluster, alert | {process_s - embedding_s:.1f} s |")
    print(f"| bare gensim per window, same sentences and settings | {bare.seconds:.1f} s "
          f"({bare.vocabulary_s:.1f} s of it build_vocab) |")
    print(f"| per-window processing p50 / p95 / max | {figures['window_p50_ms']:.0f} / "
          f"{figures['window_p95_ms']:.0f} / {figures['window_max_ms']:.0f} ms |")
    print(f"| per-window embedding update p50 / p95 | {figures['embedding_p50_ms']:.0f} / "
          f"{figures['embedding_p95_ms']:.0f} ms |")
    print(f"| words/s inside gensim train / end to end | {figures['words_per_s_gensim']:,.0f} / "
          f"{figures['words_per_s_end_to_end']:,.0f} |")
    print(f"| **end to end / bare gensim** | **{figures['ratio_end_to_end_vs_bare_gensim']:.2f}** |")
    print(f"| embedding stage / bare gensim | {figures['ratio_embedding_vs_bare_gensim']:.2f} |\n")
    return figures


def label_section(run: PipelineRun, recipes: dict[str, TrainedVectors], truth: Any) -> dict[str, Any]:
    knn = run.settings.knn
    senders = run.active_senders(DAY_S)
    votes = labellers(knn.k, knn.min_similarity, knn.min_margin)
    streaming_s = sum(run.embedding_s)
    batch = recipes["darkvec batch c25 d50"]
    models: list[tuple[str, np.ndarray, float]] = [("streaming (pipeline defaults)", streaming_vectors(run, senders),
                                                    streaming_s)]
    models += [(name, recipe.select(senders), recipe.seconds) for name, recipe in recipes.items()]
    scores: dict[str, dict[str, LabelScores]] = {}
    for name, vectors, _ in models:
        scores[name] = {vote: score_labels(vote, senders, vectors, truth, labeller) for vote, labeller in votes.items()}

    batch_f1 = scores["darkvec batch c25 d50"]["majority (no abstain)"].macro_f1
    first = next(iter(scores.values()))["majority (abstain)"]
    print(f"## Label quality, leave-one-out over the senders active in the last day ({len(senders):,} senders, "
          f"{first.queries} scanner or Mirai-like in {first.classes} classes), k={knn.k}\n")
    print("| recipe | train s | cost / batch | macro F1 majority | macro F1 majority + abstain | coverage | "
          "macro F1 compat | majority - batch (points) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, _, seconds in models:
        row = scores[name]
        plain, abstain, compat = row["majority (no abstain)"], row["majority (abstain)"], row["darkvec-compat"]
        print(f"| {name} | {seconds:.1f} | {seconds / batch.seconds:.3f} | {plain.macro_f1:.3f} | "
              f"{abstain.macro_f1:.3f} | {abstain.coverage:.2f} | {compat.macro_f1:.3f} | "
              f"{100 * (plain.macro_f1 - batch_f1):+.1f} |")
    print("\n### Precision with and without abstain, with and without the unknown class\n")
    print("| recipe | vote | precision when labelling | coverage | macro F1 with unknown | unknown recall | "
          "precision when labelling, with unknown |")
    print("|---|---|---|---|---|---|---|")
    for name in ("streaming (pipeline defaults)", "darkvec batch c25 d50"):
        for vote, value in scores[name].items():
            print(f"| {name} | {vote} | {value.precision_decided:.3f} | {value.coverage:.2f} | "
                  f"{value.macro_f1_unknown:.3f} | {value.unknown_recall:.3f} | "
                  f"{value.precision_decided_unknown:.3f} |")
    weakest = sorted(scores["streaming (pipeline defaults)"]["majority (no abstain)"].per_class_f1.items(),
                     key=lambda item: item[1])[:4]
    print("\nWeakest classes, streaming, majority: " + ", ".join(f"{label} {f1:.2f}" for label, f1 in weakest))
    pipeline_labels = score_pipeline_labels(run, truth)
    print(f"\nLabels the running pipeline gave (kNN, senders not on the operator's list): "
          f"{pipeline_labels.hidden_targets_correct} of {pipeline_labels.hidden_targets} unlisted scanners "
          f"labelled correctly, {pipeline_labels.hidden_targets_wrong} wrongly; "
          f"{pipeline_labels.others_labelled} of {pipeline_labels.others} other senders got a label; "
          f"precision {pipeline_labels.precision:.3f}. Wrong labels by true group: "
          + ("; ".join(f"{group} -> {dict(given)}" for group, given in pipeline_labels.wrong_by_group.items())
             or "none") + "\n")
    return {
        "senders": len(senders),
        "scores": {name: {vote: asdict(value) for vote, value in row.items()} for name, row in scores.items()},
        "train_s": {name: seconds for name, _, seconds in models},
        "pipeline_labels": asdict(pipeline_labels),
    }


def configured_clusterer(settings: Settings) -> SenderClusterer:
    """Return the clusterer the pipeline builds from its settings."""
    c = settings.clusters
    return SenderClusterer(method=c.method, k=c.k, resolution=c.resolution,  # type: ignore[arg-type]
                           min_similarity=c.min_similarity, min_cluster_size=c.min_cluster_size, seed=c.seed)


def cluster_section(run: PipelineRun, recipes: dict[str, TrainedVectors], truth: Any) -> dict[str, Any]:
    senders = run.active_senders(run.settings.clusters.active_s)
    default = configured_clusterer(run.settings)
    paper = SenderClusterer(method="darkvec-paper", seed=run.settings.clusters.seed)
    vector_sets = {"streaming": streaming_vectors(run, senders),
                   "darkvec batch": recipes["darkvec batch c25 d50"].select(senders)}
    rows: list[ClusterScores] = []
    for vectors_name, vectors in vector_sets.items():
        for method_name, clusterer in (("default", default), ("darkvec-paper", paper)):
            rows.append(score_clustering(f"{vectors_name} / {method_name}", clusterer, senders, vectors, truth))
    print(f"## Cluster quality on the {len(senders):,} senders the pipeline clusters at the last window\n")
    print("| vectors / method | clusters | noise | ARI groups | ARI sub-groups | ARI groups, coordinated only | s |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row.name} | {row.clusters} | {row.noise} | {row.ari_group:.3f} | {row.ari_subgroup:.3f} | "
              f"{row.ari_group_coordinated:.3f} | {row.seconds:.2f} |")
    for row in rows[:2]:
        merged = "; ".join("+".join(groups) for groups in row.merged.values()) or "none"
        split = "; ".join(f"{group} into {len(labels)}" for group, labels in row.split.items()) or "none"
        print(f"\n{row.name}: merged clusters: {merged}. Split groups: {split}.")
    print()
    sweep = cluster_sweep(senders, vector_sets["streaming"], truth, run.settings.clusters.seed)
    return {"senders": len(senders), "rows": [asdict(row) for row in rows], "sweep": sweep}


# Clusterings tried on the streaming vectors, to ground a proposed default.
SWEEP_CLUSTERERS = {
    "leiden k10 r0.5 sim0.5 (class default)": {"method": "leiden", "k": 10, "resolution": 0.5, "min_similarity": 0.5},
    "leiden k10 r2 sim0.3": {"method": "leiden", "k": 10, "resolution": 2.0, "min_similarity": 0.3},
    "leiden k10 r4 sim0.3": {"method": "leiden", "k": 10, "resolution": 4.0, "min_similarity": 0.3},
    "leiden k5 r1 sim0.5": {"method": "leiden", "k": 5, "resolution": 1.0, "min_similarity": 0.5},
    "leiden k5 r2 sim0.5": {"method": "leiden", "k": 5, "resolution": 2.0, "min_similarity": 0.5},
    "louvain k10 r1 sim0.3": {"method": "louvain", "k": 10, "resolution": 1.0, "min_similarity": 0.3},
    "hdbscan": {"method": "hdbscan"},
}


def cluster_sweep(senders: list[str], vectors: np.ndarray, truth: Any, seed: int) -> list[dict[str, Any]]:
    print("### Other clustering settings on the same streaming vectors\n")
    print("| setting | clusters | noise | ARI groups | ARI sub-groups | ARI groups, coordinated only |")
    print("|---|---|---|---|---|---|")
    rows = []
    for name, options in SWEEP_CLUSTERERS.items():
        row = score_clustering(name, SenderClusterer(seed=seed, **options), senders, vectors, truth)
        rows.append(asdict(row))
        print(f"| {name} | {row.clusters} | {row.noise} | {row.ari_group:.3f} | {row.ari_subgroup:.3f} | "
              f"{row.ari_group_coordinated:.3f} |")
    print()
    return rows


def alert_section(run: PipelineRun, truth: Any, stable: PipelineRun, stable_truth: Any) -> dict[str, Any]:
    scores = {"events": score_alerts(run, truth), "stable": score_alerts(stable, stable_truth)}
    print("## Alerts (alerts.jsonl of the real pipeline)\n")
    print("| run | days | alerts by type | cluster alerts true / all | precision | false cluster alerts / day | "
          "label changes correct / all |")
    print("|---|---|---|---|---|---|---|")
    for name, value in scores.items():
        counts = ", ".join(f"{kind} {count}" for kind, count in sorted(value.counts.items())) or "none"
        print(f"| {name} | {value.days:.1f} | {counts} | {value.true_cluster_alerts} / {value.cluster_alerts} | "
              f"{value.cluster_precision:.2f} | {value.false_cluster_alerts_per_day:.1f} | "
              f"{value.label_changes_correct} / {value.label_changes} |")
    print("\n| event | window | first matching alert | lag (windows) | lag after the group's first traffic | "
          "members in the group | group senders covered |")
    print("|---|---|---|---|---|---|---|")
    for detection in scores["events"].detections:
        found = detection.alert_type or "none"
        lag = detection.lag_windows if detection.lag_windows is not None else "-"
        after = detection.lag_after_activity if detection.lag_after_activity is not None else "-"
        print(f"| {detection.event} | {detection.event_window} | {found} | {lag} | {after} | "
              f"{detection.member_share:.2f} | {detection.group_recall:.2f} |")
    print("\nEvery cluster alert, judged by the senders it is about (moved senders of a subgroup port change, "
          "joined senders of a size burst, else the cluster):\n")
    print("| run | window | type | rule | cluster | true | senders | their true groups | summary |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, value in scores.items():
        for judged in value.judged:
            groups = ", ".join(f"{group} {count}" for group, count in judged.subject_groups.items())
            print(f"| {name} | {judged.window_index} | {judged.alert_type} | {judged.rule or '-'} | "
                  f"{judged.cluster_id} | {'yes' if judged.true else 'no'} | {judged.subject_size} | {groups} | "
                  f"{judged.summary} |")
    print()
    return {name: _alert_dict(value) for name, value in scores.items()}


def _alert_dict(value: AlertScores) -> dict[str, Any]:
    document = asdict(value)
    document["cluster_precision"] = value.cluster_precision
    document["false_cluster_alerts_per_day"] = value.false_cluster_alerts_per_day
    return document


def scaling_section(work: Path, scale: float, seed: int) -> list[dict[str, Any]]:
    """Run one simulated day per telescope size and per window length, each against bare gensim."""
    cases = [("198.51.100.0/24", 3600), ("198.51.100.0/22", 3600), ("198.51.96.0/20", 3600),
             ("198.51.100.0/24", 900), ("198.51.100.0/24", 14400)]
    rows = []
    print(f"## Scaling: one simulated day at scale {scale:g}, seed {seed}\n")
    print("| telescope | window s | records | windows | senders | end to end s | embedding s | bare gensim s | "
          "end to end / bare | window p50 ms | window p95 ms | words/s in gensim |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for prefix, window_s in cases:
        name = prefix.replace("/", "_")
        sim = work / f"scaling-{name}"
        simulate(sim, simulation_config(1.0, scale, seed, prefix=prefix))
        run = run_pipeline(sim, work / f"out-scaling-{name}-{window_s}", [f"windows.window_s={window_s}"])
        embedding = run.settings.embedding
        bare = gensim_per_window(run.windows, vector_size=embedding.vector_size, context=embedding.context,
                                 epochs=embedding.epochs_per_window, seed=embedding.seed)
        gensim_s = sum(run.gensim_train_s)
        row = {
            "prefix": prefix, "window_s": window_s, "records": run.records, "windows": len(run.windows),
            "senders": len(run.pipeline.embedding), "total_s": run.total_s, "embedding_s": sum(run.embedding_s),
            "bare_gensim_s": bare.seconds, "ratio": run.total_s / bare.seconds if bare.seconds else 0.0,
            "p50_ms": percentile_ms(run.process_s, 0.5), "p95_ms": percentile_ms(run.process_s, 0.95),
            "words_per_s": run.words_trained / gensim_s if gensim_s else 0.0,
        }
        rows.append(row)
        print(f"| {prefix} | {window_s} | {row['records']:,} | {row['windows']} | {row['senders']:,} | "
              f"{row['total_s']:.1f} | {row['embedding_s']:.1f} | {row['bare_gensim_s']:.1f} | {row['ratio']:.2f} | "
              f"{row['p50_ms']:.0f} | {row['p95_ms']:.0f} | {row['words_per_s']:,.0f} |", flush=True)
    print()
    return rows


def real_section(data: Path, output: Path) -> dict[str, Any]:
    from bench.quality_real import run_real

    started = time.perf_counter()
    result = run_real(data, output)
    print("## Real capture: marx iptables log (2013), pipeline defaults, file mode\n")
    print(f"{result.records:,} records, {result.windows} windows, {result.senders:,} senders embedded, "
          f"{result.seconds:.0f} s.\n")
    print(f"University of Michigan senders (141.212.0.0/16) embedded: {result.umich_senders}; mean share of their "
          f"5 nearest neighbours inside 141.212.0.0/16: {result.umich_neighbour_share:.3f}; "
          f"{result.umich_all_inside} have all 5 inside.\n")
    top = sorted(result.classes.items(), key=lambda item: -item[1])[:8]
    print(f"Public scanner lists label {result.labelled} embedded senders "
          f"({', '.join(f'{label} {count}' for label, count in top)}). Leave-one-out, k=7 majority with the "
          f"default abstain thresholds: macro F1 {result.macro_f1:.3f}, accuracy {result.accuracy:.3f}, "
          f"coverage {result.coverage:.2f}, precision when labelling {result.precision_decided:.3f}; "
          f"with the unknown class macro F1 {result.macro_f1_unknown:.3f}.\n")
    logger.info("real section took %.0f s", time.perf_counter() - started)
    return asdict(result)


if __name__ == "__main__":
    main()
