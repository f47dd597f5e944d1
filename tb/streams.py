"""The stream drivers live in the library: :mod:`sushi_sched.runtime.streams`."""

from sushi_sched.runtime.streams import StreamSink, StreamSource

__all__ = ["StreamSink", "StreamSource"]
