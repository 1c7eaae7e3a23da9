"""Run the examples in the windows package's docstrings."""

from __future__ import annotations

import doctest

import pytest

from darkvec_stream.windows import sender_filter, windower


@pytest.mark.parametrize("module", [sender_filter, windower])
def test_docstring_examples(module: object) -> None:
    failures, attempted = doctest.testmod(module)  # type: ignore[arg-type]
    assert attempted > 0
    assert failures == 0
