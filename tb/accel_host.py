"""The ``sushi_sim`` host driver lives in the RTL backend, the one place that knows the top's
port names: :class:`sushi_sched.runtime.rtl.AccelHost`. Re-exported for the testbenches."""

from sushi_sched.runtime.backend import RunResult
from sushi_sched.runtime.rtl import AccelHost

__all__ = ["AccelHost", "RunResult"]
