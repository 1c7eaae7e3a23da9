import json
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from darkvec_stream.metrics import Health, MetricsServer, PipelineMetrics
from darkvec_stream.metrics.registry import MAX_LABEL_CLASSES


def test_counter_names_follow_conventions():
    metrics = PipelineMetrics()
    metrics.records_consumed.inc()
    metrics.count_rejects(["malformed"])
    text = _scrape_text(metrics)
    families = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert families["darkvec_records_consumed"] == "counter"
    assert families["darkvec_window_close_duration_seconds"] == "histogram"
    assert families["darkvec_vocabulary_senders"] == "gauge"
    assert "process_resident_memory_bytes" in families
    assert "darkvec_records_consumed_total 1.0" in text


def test_label_series_stay_bounded():
    metrics = PipelineMetrics()
    metrics.set_label_counts({f"class{i}": i + 1 for i in range(500)})
    samples = [
        sample
        for family in text_string_to_metric_families(_scrape_text(metrics))
        if family.name == "darkvec_labelled_senders"
        for sample in family.samples
    ]
    assert len(samples) == MAX_LABEL_CLASSES + 1
    assert sum(sample.value for sample in samples) == sum(range(1, 501))


def test_server_binds_loopback_and_reports_health():
    metrics = PipelineMetrics()
    health = Health()
    server = MetricsServer(metrics.registry, health).start()
    try:
        host, port = server.address
        assert host == "127.0.0.1"
        try:
            urllib.request.urlopen(f"http://{host}:{port}/healthz")
            raise AssertionError("expected 503 before the pipeline is ready")
        except urllib.error.HTTPError as error:
            assert error.code == 503
        health.ready = True
        body = json.loads(urllib.request.urlopen(f"http://{host}:{port}/healthz").read())
        assert body["ready"] is True
        assert b"darkvec_records_consumed_total" in urllib.request.urlopen(f"http://{host}:{port}/metrics").read()
    finally:
        server.stop()


def _scrape_text(metrics):
    from prometheus_client import generate_latest

    return generate_latest(metrics.registry).decode()
