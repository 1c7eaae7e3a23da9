"""TLS and SASL client settings shared by the consumer and the producer, and secret masking.

This module validates the settings and turns them into kafka-python keyword
arguments. It does not create SSL contexts or talk to a broker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from darkvec_stream.errors import ConfigError

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
MASK = "***"

# Key names whose values are secrets; a key *file* path is not a secret.
_SECRET_KEY = re.compile(r"password|secret|token|credential|sasl_oauth", re.IGNORECASE)


def masked(settings: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``settings`` with secret values replaced by ``***``, recursively.

    Empty or None secrets stay as they are, so a log still shows that no
    password was set.
    """
    result: dict[str, Any] = {}
    for key, value in settings.items():
        if isinstance(value, Mapping):
            result[key] = masked(value)
        elif _SECRET_KEY.search(str(key)) and value not in (None, ""):
            result[key] = MASK
        else:
            result[key] = value
    return result


@dataclass(frozen=True)
class KafkaSecurity:
    """Authentication and encryption settings of a Kafka client: PLAINTEXT, TLS and/or SASL.

    Empty strings mean "not set", as in the YAML configuration. The password
    is excluded from ``repr`` so it never reaches a log line by accident.
    """

    security_protocol: str = "PLAINTEXT"
    ssl_cafile: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True
    sasl_mechanism: str = ""
    sasl_plain_username: str = ""
    sasl_plain_password: str = ""

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in masked(self.__dict__).items())
        return f"KafkaSecurity({fields})"

    def __post_init__(self) -> None:
        if self.security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(
                f"kafka.security_protocol {self.security_protocol!r} is invalid: use one of {', '.join(SECURITY_PROTOCOLS)}"
            )
        if self.sasl_mechanism not in SASL_MECHANISMS:
            raise ConfigError(
                f"kafka.sasl_mechanism {self.sasl_mechanism!r} is invalid: use one of "
                f"{', '.join(repr(name) for name in SASL_MECHANISMS)}"
            )
        uses_sasl = self.security_protocol.startswith("SASL_")
        if uses_sasl and not self.sasl_mechanism:
            raise ConfigError(
                f"kafka.security_protocol is {self.security_protocol} but kafka.sasl_mechanism is empty: "
                "set it to PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"
            )
        if uses_sasl and not (self.sasl_plain_username and self.sasl_plain_password):
            raise ConfigError(
                f"kafka.security_protocol is {self.security_protocol} but the SASL user name or "
                "password is empty: set kafka.sasl_plain_username and kafka.sasl_plain_password"
            )
        for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            path = getattr(self, name)
            if path and not Path(path).is_file():
                raise ConfigError(f"kafka.{name} {path!r} is not found or not a file: give the path of a PEM file")

    def client_options(self) -> dict[str, Any]:
        """Return the kafka-python keyword arguments for these settings (unset ones left out)."""
        options: dict[str, Any] = {"security_protocol": self.security_protocol}
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_check_hostname"] = self.ssl_check_hostname
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                if getattr(self, name):
                    options[name] = getattr(self, name)
        if self.security_protocol.startswith("SASL_"):
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_plain_username
            options["sasl_plain_password"] = self.sasl_plain_password
        return options
