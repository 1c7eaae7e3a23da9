"""TLS/SASL settings: validation, kafka-python options and secret masking."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from darkvec_stream.errors import ConfigError
from darkvec_stream.kafka.consumer import RecordConsumer
from darkvec_stream.kafka.security import MASK, KafkaSecurity, masked


def test_masked_hides_secrets_recursively() -> None:
    settings = {
        "sasl_plain_password": "hunter2",
        "ssl_password": "pem-pass",
        "nested": {"api_token": "abc", "user": "alice"},
        "ssl_keyfile": "/etc/kafka/client.key",
        "sasl_plain_username": "alice",
    }

    result = masked(settings)

    assert result["sasl_plain_password"] == MASK
    assert result["ssl_password"] == MASK
    assert result["nested"] == {"api_token": MASK, "user": "alice"}
    assert result["ssl_keyfile"] == "/etc/kafka/client.key"
    assert result["sasl_plain_username"] == "alice"
    assert settings["sasl_plain_password"] == "hunter2"


def test_masked_keeps_empty_secrets_visible() -> None:
    assert masked({"sasl_plain_password": ""}) == {"sasl_plain_password": ""}
    assert masked({"sasl_plain_password": None}) == {"sasl_plain_password": None}


def test_plaintext_options() -> None:
    assert KafkaSecurity().client_options() == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_options_pass_through(tmp_path: Path) -> None:
    cafile = tmp_path / "ca.pem"
    cafile.write_text("-----BEGIN CERTIFICATE-----\n")
    security = KafkaSecurity(
        security_protocol="SASL_SSL",
        ssl_cafile=str(cafile),
        sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="alice",
        sasl_plain_password="hunter2",
    )

    options = security.client_options()

    assert options == {
        "security_protocol": "SASL_SSL",
        "ssl_check_hostname": True,
        "ssl_cafile": str(cafile),
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "alice",
        "sasl_plain_password": "hunter2",
    }


def test_repr_masks_password() -> None:
    security = KafkaSecurity(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="alice",
        sasl_plain_password="hunter2",
    )

    assert "hunter2" not in repr(security)
    assert "alice" in repr(security)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"security_protocol": "TLS"}, "security_protocol 'TLS' is invalid"),
        ({"sasl_mechanism": "GSSAPI"}, "sasl_mechanism 'GSSAPI' is invalid"),
        ({"security_protocol": "SASL_SSL"}, "sasl_mechanism is empty"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}, "password is empty"),
        ({"security_protocol": "SSL", "ssl_cafile": "/no/such/ca.pem"}, "ssl_cafile '/no/such/ca.pem' is not found"),
    ],
)
def test_invalid_security_rejected(settings: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KafkaSecurity(**settings)


def test_consumer_start_log_masks_password(caplog: pytest.LogCaptureFixture) -> None:
    security = KafkaSecurity(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="alice",
        sasl_plain_password="hunter2",
    )
    created: list[dict[str, object]] = []

    class RecordingFactory:
        # Stands in for KafkaConsumer only to capture the options, so the
        # test needs no SASL broker.
        def __call__(self, **options: object) -> "RecordingFactory":
            created.append(options)
            return self

        def subscribe(self, topics: list[str], listener: object) -> None:
            pass

    consumer = RecordConsumer("127.0.0.1:9", ["topic"], security=security, consumer_factory=RecordingFactory())
    with caplog.at_level(logging.DEBUG):
        consumer.start()

    assert created[0]["sasl_plain_password"] == "hunter2"
    assert "hunter2" not in caplog.text
    assert "'sasl_plain_password': '***'" in caplog.text
