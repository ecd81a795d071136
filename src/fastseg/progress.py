"""A minimal progress line on stderr for long runs."""
import sys


class Progress:
    """Percent of the input read, redrawn in place on stderr; silent when
    disabled or when the total is unknown."""

    def __init__(self, enabled: bool, total, label: str):
        self.enabled = bool(enabled) and bool(total)
        self.total = total
        self.label = label
        self._last = -1

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        pct = min(100, int(100 * done / self.total))
        if pct != self._last:
            self._last = pct
            sys.stderr.write(f"\r{self.label}: {pct:3d}%")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled and self._last >= 0:
            sys.stderr.write("\r" + " " * (len(self.label) + 6) + "\r")
            sys.stderr.flush()
