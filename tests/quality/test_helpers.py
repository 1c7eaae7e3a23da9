"""The benchmark's own helpers: sentence splitting, truth views, the stable simulation and the baselines."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bench.baselines import GENSIM_MAX_SENTENCE_WORDS, days_of, idarkvec_daily, split_long
from bench.quality_data import cluster_truth, simulation_config
from bench.quality_pipeline import PipelineRun, WindowSentences
from darkvec_stream.simulate import CampaignGroup, ContinuousGroup, Truth


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=3 * GENSIM_MAX_SENTENCE_WORDS + 7), max_size=4))
def test_split_long_keeps_every_token(lengths: list[int]) -> None:
    sentences = [tuple(f"s{i}" for i in range(length)) for length in lengths]
    pieces = split_long(sentences)
    assert all(0 < len(piece) <= GENSIM_MAX_SENTENCE_WORDS for piece in pieces)
    assert [token for piece in pieces for token in piece] == [token for s in sentences for token in s]


def test_stable_config_has_no_events() -> None:
    config = simulation_config(2.0, 0.02, 1, stable=True)
    assert not any(isinstance(p, ContinuousGroup) and p.onset_day is None for p in config.populations)
    subgroups = [sub for p in config.populations if isinstance(p, CampaignGroup) for sub in p.subgroups]
    assert not any(sub.ports_after for sub in subgroups)
    assert len(config.populations) == len(simulation_config(2.0, 0.02, 1).populations) - 1


def test_cluster_truth_lone_senders(simulated: tuple[Truth, PipelineRun]) -> None:
    truth, _ = simulated
    lone = [ip for ip, row in truth.senders.items() if row.kind in ("noise", "backscatter")][:5]
    scanners = [ip for ip, row in truth.senders.items() if row.group == "censys"][:3]
    groups = cluster_truth(truth, lone + scanners)
    assert len(set(groups[:len(lone)])) == len(lone)
    assert set(groups[len(lone):]) == {"censys"}
    assert set(cluster_truth(truth, scanners, "subgroup")) <= {"censys-web", "censys-iot", "censys-db"}


def test_days_of_groups_by_utc_day() -> None:
    hour_ns = 3600 * 10**9
    windows = [WindowSentences(i, i * hour_ns, (i + 1) * hour_ns, ((f"a{i}", "b"),)) for i in range(50)]
    days = days_of(windows)
    assert [len(day) for day in days] == [24, 24, 2]


def test_idarkvec_daily_embeds_every_sender(simulated: tuple[Truth, PipelineRun]) -> None:
    _, run = simulated
    model = idarkvec_daily(run.windows, vector_size=20, context=5)
    in_sentences = {s for window in run.windows for sentence in window.sentences for s in sentence}
    assert set(model.senders) == in_sentences
    assert model.vectors.shape == (len(in_sentences), 20)
