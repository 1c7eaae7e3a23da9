"""Alerts of the real pipeline on the simulated worm onset and port-set change."""

from __future__ import annotations

import pytest

from bench.quality_eval import score_alerts
from bench.quality_pipeline import PipelineRun
from darkvec_stream.simulate import Truth


def test_alert_scoring_sees_both_events(simulated: tuple[Truth, PipelineRun]) -> None:
    truth, run = simulated
    scores = score_alerts(run, truth)
    assert [d.event for d in scores.detections] == ["worm onset", "port-set change"]
    assert scores.cluster_alerts >= scores.true_cluster_alerts
    assert (run.pipeline.output_dir / "alerts.jsonl").is_file()


# NOTE: the worm's first senders land in an existing noise cluster; about six
# windows later they leave it as a cluster that tracking calls a split, and
# only emerged clusters raise new-cluster alerts. Flip this test to a plain
# one once the onset is detected.
@pytest.mark.xfail(strict=True, reason="worm onset raises no new-cluster alert with the configured defaults")
def test_worm_onset_alert_within_two_windows(simulated: tuple[Truth, PipelineRun]) -> None:
    truth, run = simulated
    worm = score_alerts(run, truth).detections[0]
    assert worm.lag_windows is not None and worm.lag_windows <= 2
    assert worm.member_share >= 0.8
