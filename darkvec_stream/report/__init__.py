"""The analyst report: cluster inspection tables and DarkVec-style plots in one HTML page.

``build_report`` turns an ``AnalystState`` into tables and plots,
``write_report`` writes them as ``report.html`` and ``report.json``. The
``darkvec-stream report`` command loads the state from a checkpoint.
"""

from darkvec_stream.report.build import ReportContent, ReportOptions, build_report, report_json, write_report

__all__ = ["ReportContent", "ReportOptions", "build_report", "report_json", "write_report"]
