"""The objective stage's start-up hold: the largest replica count asked for within the last
start-up time, kept as a few (slot start, count) peaks, one per quarter of a start-up, so a
replica asked for now is not given back before a replacement could have started.

Pure: `now` comes from the caller.
"""

from __future__ import annotations

from typing import Final

MAX_PEAKS: Final = 8

Peaks = tuple[tuple[float, int], ...]


def hold_peaks(peaks: Peaks, now: float, lead: float, count: int) -> tuple[Peaks, int]:
    """Record `count` in the current quarter-start-up slot; the max over the last start-up."""
    if lead <= 0:
        return (), count
    # A quarter of the start-up, at least a second: a start-up measured near 0 s would make
    # slots too fine for a float time (now // slot overflows to inf).
    slot = max(lead * 0.25, 1.0)
    start = (now // slot) * slot
    if peaks:
        last_t, last_n = peaks[-1]
        if last_t == start and now - lead < peaks[0][0] + slot:
            # The common case: still in the last slot and nothing expired.
            if count > last_n:
                peaks = (*peaks[:-1], (start, count))
            return peaks, top_peak(peaks)
    cutoff = now - lead - slot
    kept = [(t, n) for t, n in peaks if cutoff < t <= now]
    if kept and kept[-1][0] == start:
        kept[-1] = (start, max(kept[-1][1], count))
    else:
        kept.append((start, count))
    peaks = tuple(kept[-MAX_PEAKS:])
    return peaks, top_peak(peaks)


def top_peak(peaks: Peaks) -> int:
    top = 0
    for _, n in peaks:
        if n > top:
            top = n
    return top
