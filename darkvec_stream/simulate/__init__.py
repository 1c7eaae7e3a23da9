"""Seeded telescope traffic simulator with exact ground truth.

Generates the traffic a darknet prefix receives from scanner organisations,
botnets, brute-forcers, a worm, backscatter and noise. It writes that traffic
in every input format the project reads, with the truth beside it: who
belongs to which group, and when events happen. It never reads real captures.
"""

from darkvec_stream.simulate.config import (
    BurstPopulation,
    CampaignGroup,
    CampaignSubgroup,
    ContinuousGroup,
    SimulationConfig,
    default_populations,
)
from darkvec_stream.simulate.engine import PacketBatch, Simulation
from darkvec_stream.simulate.run import SimulationResult, simulate_messages, simulate_records, write_simulation
from darkvec_stream.simulate.truth import Truth, load_truth
from darkvec_stream.simulate.writers import OUTPUT_FORMATS

__all__ = [
    "BurstPopulation",
    "CampaignGroup",
    "CampaignSubgroup",
    "ContinuousGroup",
    "OUTPUT_FORMATS",
    "PacketBatch",
    "Simulation",
    "SimulationConfig",
    "SimulationResult",
    "Truth",
    "default_populations",
    "load_truth",
    "simulate_messages",
    "simulate_records",
    "write_simulation",
]
