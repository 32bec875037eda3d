"""Number spellings Python's `float()` takes and no format a source reads writes: every source
kind that reads a number from text refuses them, with the value in the message
(`autoscaler/sources/numbers.py`)."""

from __future__ import annotations

import pytest

from autoscaler.sources.base import PermanentSourceError, Source

# One field each: none holds an ASCII space or tab, which separate the fields of an exposition.
NOT_WRITTEN = (
    "1_000",  # an underscore between digits (Python literals only)
    "\u0663",  # Arabic-Indic 3
    "\u0661\u0662.\u0665",  # Arabic-Indic 12.5
    "\uff17",  # fullwidth 7
    "\u20037",  # an em space before
    "7\u00a0",  # a no-break space after
    "+nan",  # NaN has no sign
)
# Whitespace around the number: only where a field may hold it (a JSON string).
PADDED = (" 7", "7 ", "\t7\n")


async def refused(source: Source) -> PermanentSourceError:
    """The permanent error one read of `source` fails with; the source is closed after."""
    try:
        with pytest.raises(PermanentSourceError) as info:
            await source.read()
    finally:
        await source.aclose()
    return info.value
