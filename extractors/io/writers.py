"""Write extraction results as JSON lines, atomically (a crash never leaves half a file)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from types import TracebackType

from extractors.results import ExtractionResult


class JsonlWriter:
    """Context manager: write results to a temp file and move it into place on success."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = None
        self._tmp: str | None = None
        self.counts = {"ok": 0, "error": 0}

    def __enter__(self) -> JsonlWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        self._fh = os.fdopen(fd, "w", encoding="utf-8")
        return self

    def write(self, result: ExtractionResult) -> None:
        assert self._fh is not None
        self._fh.write(json.dumps(result.to_json_dict(), ensure_ascii=False) + "\n")
        self.counts[result.status] += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._fh is not None and self._tmp is not None
        self._fh.close()
        if exc_type is None:
            os.replace(self._tmp, self.path)
        else:
            os.unlink(self._tmp)
