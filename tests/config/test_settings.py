import dataclasses
from pathlib import Path

import pytest
import yaml

from darkvec_stream.config import check_file, load_settings, masked_dict
from darkvec_stream.config.document import render_config
from darkvec_stream.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_config_yaml_matches_schema():
    assert (ROOT / "config.yaml").read_text() == render_config()


def test_config_yaml_is_valid():
    settings = check_file(ROOT / "config.yaml")
    assert settings.kafka.bootstrap_servers == "embedded"
    assert settings.windows.window_s == 3600


def test_precedence_cli_over_env_over_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("knn: {k: 3}\nwindows: {window_s: 60}\n")
    env = {"DARKVEC_STREAM_KNN__K": "5", "DARKVEC_STREAM_WINDOWS__LATENESS_S": "7"}
    settings = load_settings(path, environ=env, overrides=["knn.k=9"])
    assert settings.knn.k == 9
    assert settings.windows.lateness_s == 7
    assert settings.windows.window_s == 60
    assert settings.embedding.vector_size == 50


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("windows.window_s=0", "windows.window_s: value 0 is below the minimum 1"),
        ("knn.vote=plurality", "knn.vote: value 'plurality' is not allowed"),
        ("knn.k=seven", "knn.k: value 'seven' must be an integer"),
        ("metrics.enabled=maybe", "metrics.enabled: value 'maybe' must be true or false"),
        ("nosuch.key=1", "unknown section 'nosuch'"),
        ("knn.nosuch=1", "unknown key knn.nosuch"),
        ("windows=1", "must look like section.key=value"),
    ],
)
def test_invalid_values_name_key_and_value(override, fragment):
    with pytest.raises(ConfigError) as error:
        load_settings(environ={}, overrides=[override])
    assert fragment in str(error.value)


def test_bad_environment_name_is_explained():
    with pytest.raises(ConfigError, match="DARKVEC_STREAM_<SECTION>__<KEY>"):
        load_settings(environ={"DARKVEC_STREAM_WINDOW_S": "5"})


def test_settings_are_read_only():
    settings = load_settings(environ={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.knn.k = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.alerts.outputs[0]["path"] = "x"  # type: ignore[index]


def test_yaml_is_loaded_safely(tmp_path):
    path = tmp_path / "evil.yaml"
    path.write_text("knn: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(path, environ={})


def test_secrets_are_masked():
    settings = load_settings(
        environ={"DARKVEC_STREAM_KAFKA__SASL_PLAIN_PASSWORD": "hunter2"},
        overrides=["alerts.outputs=[{type: splunk-hec, url: 'https://127.0.0.1:8088', token: abc123}]"],
    )
    dumped = yaml.safe_dump(masked_dict(settings))
    assert "hunter2" not in dumped
    assert "abc123" not in dumped
    assert settings.kafka.sasl_plain_password == "hunter2"


def test_missing_file_is_reported(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        check_file(tmp_path / "absent.yaml")


@pytest.mark.parametrize("password", ["0777", "12:30", "0x1F", "#hunter2", "null", "@x", '"quoted"'])
def test_string_secrets_taken_verbatim(password):
    settings = load_settings(environ={"DARKVEC_STREAM_KAFKA__SASL_PLAIN_PASSWORD": password})
    assert settings.kafka.sasl_plain_password == password


def test_secret_never_in_error_message(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("kafka: {sasl_plain_password: [hunter2-secret]}\n")
    with pytest.raises(ConfigError) as error:
        load_settings(path, environ={})
    assert "hunter2-secret" not in str(error.value)
    assert "kafka.sasl_plain_password" in str(error.value)


def test_environment_error_names_variable():
    with pytest.raises(ConfigError, match="environment variable DARKVEC_STREAM_FOO__BAR: unknown section 'foo'"):
        load_settings(environ={"DARKVEC_STREAM_FOO__BAR": "1"})


@pytest.mark.parametrize(
    "override, fragment",
    [
        ("input.decoder_options={preset: nope}", "input.decoder_options: unknown option preset"),
        ("labels.sources=[{path: /nonexistent/list.txt}]", "labels.sources: entry 0: path"),
        ("services.domain_map={telnet: [99999/tcp]}", "services.domain_map: invalid port range"),
        ("services.domain_map={telnet: [tcp/23]}", "services.domain_map: invalid port spec"),
        ("alerts.outputs=[{type: carrier-pigeon}]", "alerts.outputs[0]: type 'carrier-pigeon' is invalid"),
        ("alerts.outputs=[{type: file, format: xml}]", "alerts.outputs[0]: format 'xml' is invalid"),
        ("alerts.outputs=[{type: file, colour: red}]", "unknown keys ['colour'] for a file output"),
        ("alerts.outputs=[{type: file, path: ../escape.jsonl}]", "must be relative to output.directory"),
        ("alerts.rate_limits={bogus: 3}", "alerts.rate_limits: unknown alert type 'bogus'"),
        ("alerts.rate_limits={new_cluster: -1}", "must be a positive number"),
        ("deadletter.path=/tmp/dead.jsonl", "deadletter.path: path '/tmp/dead.jsonl' must be relative"),
        ("knn.min_similarity=.nan", "knn.min_similarity: value nan must be a finite number"),
        ("embedding.max_sentence_words=20", "embedding: max_sentence_words=20"),
    ],
)
def test_stage_settings_checked_before_start(override, fragment):
    with pytest.raises(ConfigError) as error:
        load_settings(environ={}, overrides=[override])
    assert fragment in str(error.value)
