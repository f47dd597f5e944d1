"""The host runtime: one interface to an accelerator (:mod:`.backend`) with three backends
(:mod:`.golden`, :mod:`.rtl`, :mod:`.board`), one memory map (:mod:`.memmap`), one server
(:mod:`.server`) and the stream job with its report (:mod:`.stream`)."""

from .backend import COUNTER_NAMES, Backend, RunError, RunResult, Script, require_ok

__all__ = ["COUNTER_NAMES", "Backend", "RunError", "RunResult", "Script", "require_ok"]
