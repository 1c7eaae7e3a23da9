from __future__ import annotations

from pathlib import Path

import pytest

from darkvec_stream.errors import InputError
from darkvec_stream.ingest import get_decoder, read_file
from darkvec_stream.ingest.record import Origin, Record, Rejected

HEADER = (
    "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n"
    "#open\t2011-03-18-19-06-08\n"
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes"
    "\tresp_bytes\tconn_state\tlocal_orig\tlocal_resp\tmissed_bytes\thistory\torig_pkts\torig_ip_bytes"
    "\tresp_pkts\tresp_ip_bytes\ttunnel_parents\n"
    "#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tbool"
    "\tcount\tstring\tcount\tcount\tcount\tcount\tset[string]\n"
)
ROW = "1300475167.096535\tCXWv6p3\t141.142.220.202\t5353\t224.0.0.251\t5353\tudp\tdns\t-\t-\t-\tS0\t-\t-\t0\tD\t1\t73\t0\t0\t(empty)"


def test_conn_log_file_with_header_and_close(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    path.write_text(HEADER + ROW + "\n" + ROW.replace("udp", "tcp").replace("\t1\t73", "\t3\t180") +
                    "\n#close\t2011-03-18-19-06-13\n" + ROW + "\n")
    items = list(read_file(path, "zeek-conn"))
    assert items[0] == Record(1300475167_096535000, "141.142.220.202", "224.0.0.251", 5353, 5353, 17, 73)
    assert items[1].packets == 3
    assert isinstance(items[2], Rejected)
    assert "#close" in items[2].detail
    assert items[2].origin.line == 12


def test_custom_separator_unset_and_reordered_fields(tmp_path: Path) -> None:
    content = (
        "#separator \\x7c\n#unset_field|NONE\n#empty_field|EMPTY\n"
        "#fields|id.resp_p|proto|id.orig_h|ts|id.resp_h\n"
        "23|tcp|2001:db8::7|1300475168.5|NONE\n"
    )
    path = tmp_path / "conn.log"
    path.write_text(content)
    assert list(read_file(path, "zeek-conn")) == [Record(1300475168_500000000, "2001:db8::7", None, None, 23, 6)]


def test_headerless_message_uses_default_order() -> None:
    records, rejects = get_decoder("zeek-conn").decode_message(ROW.encode() + b"\nshort\tline", Origin("zeek"))
    assert records == [Record(1300475167_096535000, "141.142.220.202", "224.0.0.251", 5353, 5353, 17, 73)]
    assert rejects[0].reason == "malformed"


def test_header_in_message_does_not_leak() -> None:
    decoder = get_decoder("zeek-conn")
    payload = b"#fields\tid.orig_h\tts\n10.0.0.1\t5.0\n"
    assert decoder.decode_message(payload, Origin("z"))[0] == [Record(5 * 10**9, "10.0.0.1")]
    assert decoder.decode_message(ROW.encode(), Origin("z"))[0][0].src == "141.142.220.202"


def test_fields_without_ts_raise_for_file(tmp_path: Path) -> None:
    path = tmp_path / "conn.log"
    path.write_text("#fields\tuid\tid.orig_h\nC1\t10.0.0.1\n")
    with pytest.raises(InputError, match="ts"):
        list(read_file(path, "zeek-conn"))


def test_concatenated_logs_switch_header(tmp_path: Path) -> None:
    second_header = "#separator \\x09\n#open\t2011-03-18-20-00-00\n#fields\tid.orig_h\tts\tid.resp_p\tproto\n"
    path = tmp_path / "conn.log"
    path.write_text(HEADER + ROW + "\n#close\t2011-03-18-19-06-13\n" + second_header +
                    "10.0.0.9\t1300475170.25\t23\ttcp\n#close\t2011-03-18-20-10-00\n")

    items = list(read_file(path, "zeek-conn"))

    assert items == [
        Record(1300475167_096535000, "141.142.220.202", "224.0.0.251", 5353, 5353, 17, 73),
        Record(1300475170_250000000, "10.0.0.9", None, None, 23, 6),
    ]


def test_later_unusable_fields_rejects_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "conn.log"
    path.write_text(HEADER + ROW + "\n#fields\tuid\tid.resp_h\nC9\t10.0.0.2\n" + HEADER + ROW + "\n")

    items = list(read_file(path, "zeek-conn"))

    assert [type(item) for item in items] == [Record, Rejected, Record]
    assert "no usable #fields" in items[1].detail
    assert "#fields has no ts, id.orig_h column" in caplog.text
    assert str(path) in caplog.text
