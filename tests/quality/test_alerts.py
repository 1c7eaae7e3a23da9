"""Alerts of the real pipeline on the simulated worm onset and port-set change, and on a stable stream."""

from __future__ import annotations

import pytest

from bench.quality_data import simulate, simulation_config
from bench.quality_eval import score_alerts
from bench.quality_pipeline import PipelineRun, run_pipeline
from darkvec_stream.simulate import Truth

from .conftest import DAYS, SCALE, SEED


@pytest.fixture(scope="module")
def stable(tmp_path_factory: pytest.TempPathFactory) -> tuple[Truth, PipelineRun]:
    """The same simulation without the worm and the port change: every cluster alert is false."""
    directory = tmp_path_factory.mktemp("quality-stable")
    truth = simulate(directory / "sim", simulation_config(DAYS, SCALE, SEED, stable=True))
    return truth, run_pipeline(directory / "sim", directory / "out")


def test_alert_scoring_sees_both_events(simulated: tuple[Truth, PipelineRun]) -> None:
    truth, run = simulated
    scores = score_alerts(run, truth)
    assert [d.event for d in scores.detections] == ["worm onset", "port-set change"]
    assert scores.cluster_alerts >= scores.true_cluster_alerts
    assert (run.pipeline.output_dir / "alerts.jsonl").is_file()


def test_worm_onset_alert_within_two_windows(simulated: tuple[Truth, PipelineRun]) -> None:
    truth, run = simulated
    worm = score_alerts(run, truth).detections[0]
    assert worm.alert_type == "new_cluster"
    assert worm.lag_windows is not None
    assert worm.lag_windows <= 2
    assert worm.member_share >= 0.8


@pytest.mark.slow
def test_stable_stream_false_cluster_alerts(stable: tuple[Truth, PipelineRun]) -> None:
    truth, run = stable
    scores = score_alerts(run, truth)
    assert scores.detections == ()
    assert scores.false_cluster_alerts_per_day <= 2.0
    port_changes = [record for record in run.alerts if record.alert.evidence.get("rule") == "port_set_changed"]
    assert port_changes == []


def test_port_change_drift_within_three_windows(simulated: tuple[Truth, PipelineRun]) -> None:
    # The changing organisation has 6 senders inside a cluster of many
    # scanners; its own senders moving to new ports raise the alert.
    truth, run = simulated
    change = score_alerts(run, truth).detections[1]
    assert change.alert_type == "cluster_drift"
    assert change.lag_windows is not None
    assert change.lag_windows <= 3
    assert change.lag_after_activity == 0
    assert change.member_share == 1.0


def test_port_change_alert_names_the_subgroup(simulated: tuple[Truth, PipelineRun]) -> None:
    truth, run = simulated
    change = next(event for event in truth.events if event["type"] == "port_change")
    drift = [record.alert for record in run.alerts
             if record.alert.type.value == "cluster_drift" and "subgroup" in record.alert.evidence]
    assert len(drift) == 1
    evidence = drift[0].evidence
    after = sorted(int(port.split("/")[0]) for port in change["ports_after"])
    before = sorted(int(port.split("/")[0]) for port in change["ports_before"])
    assert sorted(evidence["ports_after"]) == after
    assert sorted(evidence["ports_before"]) == before
    assert evidence["moved_senders"] >= 5
    assert evidence["jaccard_vs_history"] == 0.0
