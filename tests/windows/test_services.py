"""Tests of service keys, the default port map and the four service modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from darkvec_stream.errors import ConfigError, StateError
from darkvec_stream.ingest.record import PROTO_ICMP, PROTO_TCP, PROTO_UDP
from darkvec_stream.windows.services import (
    DEFAULT_DOMAIN_SERVICES,
    KEY_COUNT,
    PROTO_KEY_BASE,
    UDP_KEY_BASE,
    UNKNOWN_PROTO_KEY,
    AutoServices,
    DomainServices,
    compile_domain_map,
    key_token,
    make_services,
    service_key,
    service_keys,
)

HOUR_NS = 3600 * 10**9


def packets_of(counts: dict[int, float]) -> np.ndarray:
    dense = np.zeros(KEY_COUNT, dtype=np.float64)
    for key, value in counts.items():
        dense[key] = value
    return dense


def test_service_key_tcp_udp_ports() -> None:
    assert service_key(PROTO_TCP, 23) == 23
    assert service_key(PROTO_UDP, 53) == UDP_KEY_BASE + 53
    assert key_token(service_key(PROTO_TCP, 23)) == "23/tcp"
    assert key_token(service_key(PROTO_UDP, 53)) == "53/udp"


def test_service_key_portless_and_odd() -> None:
    assert service_key(PROTO_ICMP, None) == PROTO_KEY_BASE + PROTO_ICMP
    assert service_key(PROTO_TCP, None) == PROTO_KEY_BASE + PROTO_TCP
    assert service_key(PROTO_TCP, 70000) == PROTO_KEY_BASE + PROTO_TCP
    assert service_key(132, 80) == PROTO_KEY_BASE + 132
    assert service_key(None, 80) == UNKNOWN_PROTO_KEY
    assert service_key(300, None) == UNKNOWN_PROTO_KEY
    assert key_token(PROTO_KEY_BASE + 47) == "gre"
    assert key_token(PROTO_KEY_BASE + 99) == "proto-99"
    assert key_token(UNKNOWN_PROTO_KEY) == "proto-unknown"


def test_default_map_examples() -> None:
    plan = DomainServices().plan(np.zeros(KEY_COUNT), HOUR_NS)
    expected = {
        (PROTO_TCP, 23): "telnet",
        (PROTO_TCP, 2323): "telnet",
        (PROTO_TCP, 22): "ssh",
        (PROTO_TCP, 8080): "http",
        (PROTO_TCP, 443): "https",
        (PROTO_UDP, 137): "netbios",
        (PROTO_TCP, 445): "smb",
        (PROTO_TCP, 3389): "rdp",
        (PROTO_TCP, 6379): "databases",
        (PROTO_TCP, 587): "mail",
        (PROTO_UDP, 53): "dns",
        (PROTO_TCP, 53): "dns",
        (PROTO_TCP, 3128): "proxy",
        (PROTO_TCP, 5555): "adb",
        (PROTO_TCP, 37215): "iot",
        (PROTO_UDP, 1900): "iot",
        (PROTO_UDP, 11211): "memcached",
        (PROTO_TCP, 100): "tcp-system",
        (PROTO_TCP, 2000): "tcp-user",
        (PROTO_TCP, 60000): "tcp-ephemeral",
        (PROTO_UDP, 1023): "udp-system",
        (PROTO_UDP, 1024): "udp-user",
        (PROTO_UDP, 49152): "udp-ephemeral",
        (PROTO_TCP, None): "tcp",
        (PROTO_UDP, None): "udp",
        (PROTO_ICMP, None): "icmp",
        (58, None): "icmp",
        (47, None): "other-proto",
        (None, None): "other-proto",
    }
    for (proto, port), service in expected.items():
        assert plan.service_of(service_key(proto, port)) == service, (proto, port)


def test_default_map_udp_only_port_on_tcp() -> None:
    # 123 is NTP over UDP only; over TCP it is an unmapped system port.
    plan = DomainServices().plan(np.zeros(KEY_COUNT), HOUR_NS)
    assert plan.service_of(service_key(PROTO_UDP, 123)) == "ntp"
    assert plan.service_of(service_key(PROTO_TCP, 123)) == "tcp-system"


def test_domain_map_overlap_names_both() -> None:
    with pytest.raises(ConfigError, match=r"'web'.*'alt'|'alt'.*'web'") as raised:
        compile_domain_map({"web": ["80-90/tcp"], "alt": ["85"]})
    assert "85/tcp" in str(raised.value)


@pytest.mark.parametrize(
    "domain_map",
    [
        {"web": ["80/icmp"]},
        {"web": ["70000"]},
        {"web": ["90-80"]},
        {"web": ["eighty"]},
        {"web": "80"},
        {"web server": ["80"]},
        {"tcp-user": ["80"]},
        ["80"],
    ],
)
def test_domain_map_rejects_invalid(domain_map: object) -> None:
    with pytest.raises(ConfigError):
        compile_domain_map(domain_map)  # type: ignore[arg-type]


def test_make_services_rejects_mode() -> None:
    with pytest.raises(ConfigError, match="'ports'"):
        make_services("ports")


@pytest.mark.parametrize("arguments", [{"top_n": 0}, {"top_n": 2.5}, {"half_life_s": 0}, {"half_life_s": float("nan")}])
def test_auto_rejects_settings(arguments: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        AutoServices(**arguments)  # type: ignore[arg-type]


def test_single_maps_everything_to_all() -> None:
    plan = make_services("single").plan(packets_of({23: 5}), HOUR_NS)
    assert {plan.service_of(key) for key in (23, UDP_KEY_BASE + 53, UNKNOWN_PROTO_KEY)} == {"all"}


def test_auto_ranks_by_count_then_key() -> None:
    services = AutoServices(top_n=2)
    plan = services.plan(packets_of({445: 5, 23: 9, 80: 5, PROTO_KEY_BASE + PROTO_ICMP: 1}), HOUR_NS)
    assert plan.service_of(23) == "23/tcp"
    # 80 and 445 tie at 5 packets: the smaller key wins the last place.
    assert plan.service_of(80) == "80/tcp"
    assert plan.service_of(445) == "other"
    assert plan.service_of(PROTO_KEY_BASE + PROTO_ICMP) == "other"


def test_auto_counts_decay_with_half_life() -> None:
    services = AutoServices(top_n=1, half_life_s=3600)
    services.plan(packets_of({23: 100}), HOUR_NS)
    plan = services.plan(packets_of({445: 60}), 2 * HOUR_NS)
    # 23/tcp decayed to 50 after one half-life, so 445/tcp (60) leads.
    assert services.decayed_counts[23] == pytest.approx(50.0)
    assert plan.service_of(445) == "445/tcp"
    assert plan.service_of(23) == "other"


def test_auto_prunes_dead_ports() -> None:
    services = AutoServices(top_n=5, half_life_s=3600)
    services.plan(packets_of({23: 1}), HOUR_NS)
    plan = services.plan(packets_of({80: 1}), 40 * HOUR_NS)
    assert services.decayed_counts[23] == 0.0
    assert plan.service_of(23) == "other"
    assert len(plan.names) == 2


def test_auto_plan_is_deterministic() -> None:
    rng = np.random.default_rng(7)
    batches = [packets_of({int(k): float(v) for k, v in zip(rng.integers(0, 5000, 300), rng.integers(1, 50, 300))}) for _ in range(5)]
    first, second = AutoServices(top_n=40), AutoServices(top_n=40)
    for hour, batch in enumerate(batches, start=1):
        plan_a = first.plan(batch, hour * HOUR_NS)
        plan_b = second.plan(batch.copy(), hour * HOUR_NS)
        assert plan_a.names == plan_b.names
        assert np.array_equal(plan_a.table, plan_b.table)


def test_hybrid_service_order() -> None:
    services = make_services("hybrid", top_n=1)
    plan = services.plan(packets_of({23: 1000, 4444: 7, 4445: 3}), HOUR_NS)
    assert plan.service_of(23) == "telnet"
    assert plan.service_of(4444) == "4444/tcp"
    assert plan.service_of(4445) == "tcp-user"
    # Mapped ports are not counted, so they never take an auto place.
    assert services.decayed_counts[23] == 0.0  # type: ignore[attr-defined]


def test_auto_save_load_same_plans(tmp_path: Path) -> None:
    original = AutoServices(top_n=3, half_life_s=7200)
    original.plan(packets_of({23: 10, 80: 4, 445: 2, 8080: 1}), HOUR_NS)
    original.save(tmp_path)
    restored = AutoServices(top_n=3, half_life_s=7200)
    restored.load(tmp_path)
    later = packets_of({8080: 30})
    plan_a = original.plan(later, 3 * HOUR_NS)
    plan_b = restored.plan(later, 3 * HOUR_NS)
    assert plan_a.names == plan_b.names
    assert np.array_equal(plan_a.table, plan_b.table)
    assert np.array_equal(original.decayed_counts, restored.decayed_counts)


def test_load_rejects_other_mode(tmp_path: Path) -> None:
    make_services("auto").save(tmp_path)
    with pytest.raises(StateError, match="'auto'.*'hybrid'"):
        make_services("hybrid").load(tmp_path)


def test_load_rejects_corrupt_counts(tmp_path: Path) -> None:
    services = AutoServices()
    services.save(tmp_path)
    np.save(tmp_path / "services_counts.npy", np.zeros(10), allow_pickle=False)
    with pytest.raises(StateError, match="shape"):
        AutoServices().load(tmp_path)


def test_default_map_is_json_like() -> None:
    # The lead copies this map into config.yaml, so it must be plain data.
    assert all(isinstance(name, str) for name in DEFAULT_DOMAIN_SERVICES)
    assert all(isinstance(spec, str) for specs in DEFAULT_DOMAIN_SERVICES.values() for spec in specs)


@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(-5, 300)), st.one_of(st.none(), st.integers(-5, 70_000))), max_size=50))
def test_service_keys_matches_scalar(pairs: list[tuple[int | None, int | None]]) -> None:
    protos = np.array([-1 if proto is None else proto for proto, _ in pairs], dtype=np.int64)
    ports = np.array([-1 if port is None else port for _, port in pairs], dtype=np.int64)
    # -1 means "missing" in the columns, so negative inputs are compared as missing.
    expected = [service_key(None if proto is None or proto < 0 else proto, None if port is None or port < 0 else port) for proto, port in pairs]
    assert service_keys(protos, ports).tolist() == expected
