"""One small seeded simulation run through the real pipeline, shared by the quality tests."""

from __future__ import annotations

import numpy as np
import pytest

from bench.baselines import TrainedVectors, darkvec_batch
from bench.quality_data import simulate, simulation_config
from bench.quality_pipeline import PipelineRun, run_pipeline
from darkvec_stream.simulate import Truth

# Two days let clusters form (warm-up is one day of hourly windows) and put
# both simulated events inside the run; scale 0.02 keeps it to seconds.
DAYS = 2.0
SCALE = 0.02
SEED = 5


@pytest.fixture(scope="package")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Truth, PipelineRun]:
    directory = tmp_path_factory.mktemp("quality")
    truth = simulate(directory / "sim", simulation_config(DAYS, SCALE, SEED))
    run = run_pipeline(directory / "sim", directory / "out")
    return truth, run


@pytest.fixture(scope="package")
def last_day(simulated: tuple[Truth, PipelineRun]) -> tuple[list[str], np.ndarray]:
    """Senders seen in the last day and their unit streaming vectors."""
    _, run = simulated
    senders = run.active_senders(86_400)
    found, vectors = run.pipeline.embedding.vectors(senders)
    assert found == senders
    return senders, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(scope="package")
def batch_vectors(simulated: tuple[Truth, PipelineRun]) -> TrainedVectors:
    """The DarkVec batch recipe on the pipeline's sentences, with fewer epochs to stay fast."""
    _, run = simulated
    return darkvec_batch(run.windows, epochs=5)

