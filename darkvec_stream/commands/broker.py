"""``darkvec-stream broker``: run the embedded test broker in the foreground until Ctrl-C.

The broker keeps topics and offsets in memory only and binds a loopback
address, so it serves for trying the daemon and ``replay`` on one machine.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from darkvec_stream.kafka.broker import DEFAULT_HOST, EmbeddedBroker, summarise_output


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "broker",
        help="run a throwaway Kafka-protocol broker (Tansu, in memory) on 127.0.0.1 until Ctrl-C",
        description="Run an embedded Tansu broker in the foreground and print its bootstrap address, "
                    "for trying the daemon and replay on one machine. Topics and committed offsets "
                    "live in memory only and vanish when it stops (Ctrl-C or SIGTERM). It binds only "
                    "a loopback address and has no authentication.",
    )
    parser.add_argument(
        "--port", type=int, default=None,
        help="TCP port to listen on (default: a free port chosen by the operating system)",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST,
        help=f"loopback address to bind; other addresses are rejected (default: {DEFAULT_HOST})",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    stopped = threading.Event()

    def request_stop(signal_number: int, frame: object) -> None:
        stopped.set()

    previous = {number: signal.signal(number, request_stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        with EmbeddedBroker(host=args.host, port=args.port) as broker:
            print(f"bootstrap servers: {broker.bootstrap_servers}", flush=True)
            print("press Ctrl-C to stop (topics and offsets are kept in memory only)", file=sys.stderr, flush=True)
            while not stopped.wait(0.5):
                if not broker.running:
                    print(f"darkvec-stream: error: broker exited unexpectedly; its output ends with: "
                          f"{summarise_output(broker.stderr_tail())}", file=sys.stderr)
                    return 1
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    print("broker stopped", file=sys.stderr)
    return 0
