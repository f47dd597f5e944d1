"""The one server: serves digits queries over any :class:`~sushi_sched.runtime.backend.Backend`.

:class:`Server` owns the memory map, the weight image and the compiled programs of one backend:

* :meth:`Server.fill_pb` writes and runs a CACHE program that puts a SubGraph (a
  :meth:`Server.layout` of a SubGraph) into the Persistent Buffer;
* :meth:`Server.query` serves one SubNet on one input: writes the input (and the program, once
  per program slot), runs it, reads the int32 logits and the counters, and checks the logits bit
  for bit against the numpy int8 reference and the byte counters against the compiler's;
* :meth:`Server.recover` is the host's recovery after a program that did not end with DONE
  (reset, rewrite the programs, refill the PB after a CACHE; docs/isa.md, "Recovery");
* :meth:`Server.serve` runs a policy over a query stream: per query the policy picks a SubNet
  with the cost model, the server updates the PB when the policy says so and serves the query;
  latency is queueing wait plus service time.

Service time is the backend's ``cycles`` counter when the backend is cycle-accurate (the RTL, a
board). The golden model has no clock: there the server takes the cost model's cycles for the
same SubNet and PB contents (``Server.cycles_source == "cost_model"``), and the reports say so.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sushi_hw import isa

from ..compiler import CompileError, LayerCall, layer_calls
from ..digits.store import load_digits_supernet
from ..digits.supernet import DigitsSuperNet
from ..subgraph import EMPTY, SubGraph
from ..traces import Query
from .backend import Backend, RunResult, require_ok
from .digits import ServeError, net_tensors, query_images, subgraph_of, subnet_info
from .memmap import MemoryMap, MemoryMapError
from .models import MLPModel, ServedModel

__all__ = [
    "CacheResult",
    "PolicyResult",
    "QueryRecord",
    "QueryResult",
    "ServeError",
    "Server",
    "net_tensors",
    "query_images",
    "subgraph_of",
    "subnet_info",
]


# ---- results -----------------------------------------------------------------------------


@dataclass
class CacheResult:
    layout: Any  #: what the PB holds now, a PB layout (pass it to later queries)
    expected_bytes: int  #: weight bytes the CACHE program must read off-chip
    run: RunResult
    problems: list[str] = field(default_factory=list)
    written: Any = None  #: the blocks the CACHE program wrote (default: layout)

    @property
    def counters(self) -> dict[str, int]:
        return self.run.counters


@dataclass
class QueryResult:
    subnet: str
    image: int | None  #: held-out image index (None: the caller's input)
    label: int | None
    logits: np.ndarray  #: int32 [n_out], read back from the backend
    reference: np.ndarray  #: int32 [n_out], numpy int8 reference
    pb_tiles: int
    expected_offchip_bytes: int  #: weight bytes the GEMMs must read off-chip
    expected_pb_bytes: int  #: weight bytes the PB must serve
    expected_commands: int
    run: RunResult
    wall_s: float
    problems: list[str] = field(default_factory=list)  #: counters that disagree

    @property
    def match(self) -> bool:
        """The backend's logits equal the reference bit for bit."""
        return bool(np.array_equal(self.logits, self.reference))

    @property
    def predicted(self) -> int:
        return int(np.argmax(self.logits))

    @property
    def reference_predicted(self) -> int:
        return int(np.argmax(self.reference))

    @property
    def counters(self) -> dict[str, int]:
        return self.run.counters

    @property
    def ok(self) -> bool:
        return self.match and not self.problems

    def as_dict(self) -> dict:
        return {
            "subnet": self.subnet,
            "image": self.image,
            "label": self.label,
            "pb_tiles": self.pb_tiles,
            "logits": self.logits.tolist(),
            "reference_logits": self.reference.tolist(),
            "match": self.match,
            "predicted": self.predicted,
            "reference_predicted": self.reference_predicted,
            "expected_offchip_bytes": self.expected_offchip_bytes,
            "expected_pb_bytes": self.expected_pb_bytes,
            "expected_commands": self.expected_commands,
            "problems": list(self.problems),
            "wall_s": self.wall_s,
            **self.counters,
        }


@dataclass
class QueryRecord:
    """One served query of a stream (a row of the report's records)."""

    policy: str
    index: int
    subnet: str
    cycles: int  #: service cycles: measured, or the cost model's on the golden model
    model_cycles: int
    latency_ms: float
    slo_ok: bool
    floor_ok: bool
    correct: bool
    match: bool  #: logits bit-exact and byte counters as compiled
    offchip_bytes: int
    weight_bytes: int
    pb_bytes: int
    pb_tiles: int
    predicted: int = -1
    logits: list[int] = field(default_factory=list)


@dataclass
class PolicyResult:
    name: str
    records: list[QueryRecord] = field(default_factory=list)
    cache_updates: int = 0
    cache_bytes: int = 0
    cache_cycles: int = 0
    unreachable_floors: int = 0
    pb_series: list[int] = field(default_factory=list)
    updates_at: list[int] = field(default_factory=list)
    #: (query index from which it is cached, SubGraph as JSON) for every PB contents
    cached: list[tuple[int, dict]] = field(default_factory=list)


# ---- the server ----------------------------------------------------------------------------


class Server:
    """Serves the SubNets of one trained SuperNet (``model``, a
    :class:`~sushi_sched.runtime.models.ServedModel`; default the digits MLP, or give its
    ``DigitsSuperNet``) on ``backend``.

    ``weights``: where the weight image is. Default: built at the memory map's weight region
    and written by :meth:`load_weights` (golden model, RTL); a board passes its flash image's
    (already programmed) image and the RAM size from its INFO (``ram_bytes``).
    """

    def __init__(
        self,
        backend: Backend,
        model: ServedModel | DigitsSuperNet | None = None,
        *,
        weights=None,  # noqa: ANN001 - the model's weight image
        ram_bytes: int | None = None,
        prog_slots: int | None = None,
    ):
        self.backend, self.cfg = backend, backend.cfg
        cfg = self.cfg
        if not isinstance(model, ServedModel):
            model = MLPModel(cfg, model or load_digits_supernet())
        self.model = model
        self.net = model.net
        try:
            work = model.workload()
            if weights is None:
                size = model.weight_image(0).end
                self.mem = MemoryMap.plan(cfg, work, ram_bytes=ram_bytes, weight_bytes=size)
                self.image = model.weight_image(self.mem.weights)
            else:
                kw = {} if prog_slots is None else {"prog_slots": prog_slots}
                self.mem = MemoryMap.plan(
                    cfg, work, ram_bytes=ram_bytes, weight_base=weights.base, **kw
                )
                self.image = weights
        except (CompileError, MemoryMapError) as e:
            raise ServeError(str(e)) from None
        self.x_test, self.y_test = model.test_set
        self._programs: dict[tuple, list[bytes]] = {}
        self._expected: dict[tuple, dict[str, int]] = {}
        self._references: dict[tuple[str, int], np.ndarray] = {}
        self._slot_of: dict[tuple, int] = {}  #: program key -> slot it is written in
        self._in_slot: list[tuple | None] = [None] * self.mem.prog_slots
        self._next_slot = 0
        self.flash = None  #: a board's FlashImage (set by runtime.board.connect)

    @property
    def cycles_source(self) -> str:
        return "measured" if self.backend.cycle_accurate else "cost_model"

    # ---- setup ---------------------------------------------------------------------------
    def load_weights(self) -> None:
        """Write the weight image (not on a backend whose weights are preloaded)."""
        if self.mem.weights_preloaded:
            return
        for addr, blob in self.image.writes():
            self.backend.write(addr, blob)

    # ---- programs --------------------------------------------------------------------------
    def calls(self, key: str) -> list[LayerCall]:
        """The GEMM layers of MLP SubNet ``key`` (the digits MLP only)."""
        return layer_calls(self.net.layers(subnet_info(self.net, key).id))

    def commands(self, key: str, layout) -> list[bytes]:  # noqa: ANN001
        """SubNet ``key``'s query program with the PB holding ``layout``, compiled once."""
        pkey = (key, layout.key())
        if pkey not in self._programs:
            mem = self.mem
            try:
                cmds = self.model.program(self.image, key, layout, mem.input, mem.output)
            except CompileError as e:
                raise ServeError(f"SubNet {key}: {e}") from None
            nbytes = len(cmds) * isa.CMD_BYTES
            if nbytes > mem.prog_bytes:
                raise ServeError(
                    f"the program of SubNet {key} is {nbytes} bytes; the memory map has "
                    f"{mem.prog_bytes} bytes per program slot"
                )
            self._programs[pkey] = cmds
        return self._programs[pkey]

    def expected(self, key: str, layout) -> dict[str, int]:  # noqa: ANN001
        """The counters SubNet ``key``'s program must show with the PB holding ``layout``
        (decoded once per program)."""
        pkey = (key, layout.key())
        if pkey not in self._expected:
            cmds = self.commands(key, layout)
            self._expected[pkey] = self.model.expected(self.image, key, layout, cmds)
        return self._expected[pkey]

    def query_program(self, key: str, layout) -> bytes:  # noqa: ANN001
        return b"".join(self.commands(key, layout))

    def program_addr(self, key: str, layout) -> int:  # noqa: ANN001
        """Address of the query program, written into a slot the first time it is needed
        (slots are reused round-robin when they are all taken)."""
        pkey = (key, layout.key())
        slot = self._slot_of.get(pkey)
        if slot is None:
            prog = self.query_program(key, layout)
            slot = self._next_slot
            self._next_slot = (slot + 1) % self.mem.prog_slots
            old = self._in_slot[slot]
            if old is not None:
                del self._slot_of[old]
            self.backend.write(self.mem.slot(slot), prog)
            self._in_slot[slot], self._slot_of[pkey] = pkey, slot
        return self.mem.slot(slot)

    def cache_program(self, layout) -> bytes:  # noqa: ANN001
        try:
            prog = b"".join([*self.model.cache_program(self.image, layout), isa.done()])
        except CompileError as e:
            raise ServeError(str(e)) from None
        if len(prog) > self.mem.cache_prog_bytes:
            raise ServeError(
                f"the CACHE program is {len(prog)} bytes; the memory map has "
                f"{self.mem.cache_prog_bytes} bytes for it"
            )
        return prog

    def layout(self, sub: SubGraph):  # noqa: ANN201 - the model's PB layout
        try:
            return self.model.layout(self.image, sub)
        except CompileError as e:
            raise ServeError(str(e)) from None

    def empty_layout(self):  # noqa: ANN201
        return self.layout(SubGraph())

    # ---- the PB ---------------------------------------------------------------------------
    def fill_pb(self, cache, old=None) -> CacheResult:  # noqa: ANN001
        """Write and run a CACHE program that fills the PB with ``cache`` (a PB layout, or a
        SubGraph laid out by the model); with ``old`` (what the PB holds) only the blocks that
        are not already in place. Later queries pass ``layout``: ``cache`` laid out (all of
        it, not only what was written)."""
        layout = self.layout(cache) if isinstance(cache, SubGraph) else cache
        todo = layout
        if old is not None:
            todo = type(layout)({t: b for t, b in layout.blocks.items() if old.blocks.get(t) != b})
        prog = self.cache_program(todo)
        self.backend.write(self.mem.cache_prog, prog)
        res = require_ok(self.backend.run(self.mem.cache_prog, f"CACHE {todo.blocks}"))
        want = todo.tiles * self.cfg.tile_bytes
        out = CacheResult(layout, want, res, written=todo)
        if res.counters["rd_weight_bytes"] != want:
            out.problems.append(
                f"CACHE read {res.counters['rd_weight_bytes']} weight bytes, expected {want}"
            )
        return out

    # ---- recovery ------------------------------------------------------------------------
    def recover(self, layout=None, *, reset: bool = True) -> CacheResult | None:  # noqa: ANN001
        """The host's recovery after a program that did not end with DONE: an error code
        (a corrupted program, MEM_TIMEOUT), a reset in the middle of it, or no answer
        (docs/isa.md, "Recovery"). The next query is then served as on a fresh start:

        1. reset the accelerator: control state to power-on (on the RTL the memory's stuck
           requests go too: after MEM_TIMEOUT on a write the memory still expects beats);
        2. forget which program each slot holds: each is written again before its next run,
           so a corrupted program in memory does not survive;
        3. with ``layout`` (what the PB must hold), write the whole PB again. Needed after a
           CACHE program that did not finish (the PB is partly written), and after PB_UNCACHED
           (code 12: the PB does not hold what the program was compiled for). Otherwise a
           query program only reads the PB, so after one the PB is intact.

        The weight image needs nothing: no program writes it, and reset keeps memory and PB.
        ``reset=False`` skips step 1 where docs/isa.md says the core needs none: after an error
        raised by a command's checks (codes 1-8, 11: nothing moved), after PB_UNCACHED (the
        command ran to its end, then the core halted), and after MEM_TIMEOUT when only reads
        were outstanding (their late answers are drained while idle). A host
        that cannot tell resets. Returns the refill's :class:`CacheResult` (None without
        ``layout`` or an empty one)."""
        if reset:
            self.backend.reset()
        self._slot_of.clear()
        self._in_slot = [None] * self.mem.prog_slots
        self._next_slot = 0
        if layout is None or not layout.tiles:
            return None
        return self.fill_pb(layout)

    # ---- one query -----------------------------------------------------------------------
    def query(
        self,
        key: str,
        *,
        image: int | None = None,
        x: np.ndarray | None = None,
        layout=None,  # noqa: ANN001
    ) -> QueryResult:
        """Serve SubNet ``key`` on held-out image ``image`` (or the int8 input ``x``) with the
        PB holding ``layout`` (default: empty)."""
        mem, model = self.mem, self.model
        layout = layout if layout is not None else self.empty_layout()
        sid = model.subnet_id(key)
        x, label = self._input(image, x)
        where = f"SubNet {sid}, " + (f"image {image}" if image is not None else "given input")
        where += f", PB {layout.blocks or 'empty'}"
        data = model.input_bytes(x)
        if len(data) > mem.input_bytes:
            raise ServeError(
                f"{where}: the input is {len(data)} bytes; the memory map has {mem.input_bytes}"
            )
        t0 = time.perf_counter()
        addr = self.program_addr(sid, layout)
        self.backend.write(mem.input, data)
        res = require_ok(self.backend.run(addr, where))
        raw = self.backend.read(mem.output, mem.output_bytes)
        logits = model.logits(raw)
        wall = time.perf_counter() - t0
        want = self.expected(sid, layout)
        out = QueryResult(
            subnet=sid,
            image=image,
            label=label,
            logits=logits,
            reference=self._reference(sid, image, x),
            pb_tiles=layout.tiles,
            expected_offchip_bytes=want["rd_weight_bytes"],
            expected_pb_bytes=want["pb_read_bytes"],
            expected_commands=want["commands"],
            run=res,
            wall_s=wall,
        )
        ctr = res.counters
        for name, value in want.items():
            if ctr[name] != value:
                out.problems.append(f"counter {name} = {ctr[name]}, expected {value}")
        return out

    def _reference(self, sid: str, image: int | None, x: np.ndarray) -> np.ndarray:
        """The numpy logits; those of held-out images are kept (policies serve the same
        (SubNet, image) pairs)."""
        if image is None:
            return self.model.reference(sid, x)
        if (sid, image) not in self._references:
            self._references[sid, image] = self.model.reference(sid, x)
        return self._references[sid, image]

    def _input(self, image: int | None, x: np.ndarray | None) -> tuple[np.ndarray, int | None]:
        if (image is None) == (x is None):
            raise ServeError("give either a held-out image index or an input")
        if image is None:
            return self.model.check_input(x), None
        n = len(self.y_test)
        if not 0 <= int(image) < n:
            raise ServeError(f"image {image} out of range: the held-out split has {n}")
        i = int(image)
        return self.model.check_input(self.x_test[i]), int(self.y_test[i])

    # ---- a stream ------------------------------------------------------------------------
    def serve(
        self,
        policy,  # noqa: ANN001 - sushi_sched.policies.Policy
        trace: Sequence[Query],
        images: np.ndarray,
        cost,  # noqa: ANN001 - sushi_sched.cost.CostModel
        candidates: Sequence,
        progress=None,  # noqa: ANN001 - anything with update(n)
        clock: str | None = None,
    ) -> PolicyResult:
        """Serve ``trace`` with ``policy``; query ``i`` carries held-out image ``images[i]``.

        ``clock``: "measured" (the backend's cycles; needs a cycle-accurate backend) or
        "cost_model"; default :attr:`cycles_source`."""
        cfg = self.cfg
        clock = clock or self.cycles_source
        if clock == "measured" and not self.backend.cycle_accurate:
            raise ValueError(f"the {self.backend.name} backend has no clock; use the cost model")
        res = PolicyResult(policy.name)
        layout = self.empty_layout()
        server_free = 0.0
        best_acc = max(s.accuracy for s in candidates)

        def set_cache(new: SubGraph, now: float) -> float:
            nonlocal layout
            new_layout = self.layout(new)
            changed = any(layout.blocks.get(t) != b for t, b in new_layout.blocks.items())
            policy.cache, old, layout = new, layout, new_layout
            res.cached.append((len(res.records), new.as_json()))
            if not changed:
                return now
            c = self.fill_pb(new_layout, old)
            if c.problems:
                raise RuntimeError(f"{policy.name}: PB update: {'; '.join(c.problems)}")
            nbytes = c.counters["rd_weight_bytes"]
            if clock == "measured":
                cycles = c.run.cycles
            else:
                cycles = cost.load_cost(
                    nbytes, len(self.cache_program(c.written)) // isa.CMD_BYTES - 1
                )[0]
            res.cache_updates += 1
            res.cache_bytes += nbytes
            res.cache_cycles += cycles
            return now + cfg.cycles_to_ms(cycles)

        first = policy.start()
        if first != EMPTY:
            server_free = set_cache(first, 0.0)
        for i, q in enumerate(trace):
            start = max(q.t_ms, server_free) if policy.queueing else q.t_ms
            s = policy.choose(q, start - q.t_ms).subnet
            if q.acc_floor > best_acc:
                res.unreachable_floors += 1
            r = self.query(s.key, image=int(images[i]), layout=layout)
            model = cost.query(s, policy.cache).cycles
            cycles = r.run.cycles if clock == "measured" else model
            finish = start + cfg.cycles_to_ms(cycles)
            lat = finish - q.t_ms
            server_free = max(server_free, finish)
            c = r.counters
            res.records.append(
                QueryRecord(
                    policy.name,
                    i,
                    s.key,
                    cycles,
                    model,
                    lat,
                    lat <= q.slo_ms + 1e-9,
                    s.accuracy >= q.acc_floor,
                    r.predicted == r.label,
                    r.ok,
                    c["rd_weight_bytes"] + c["rd_act_bytes"] + c["rd_cmd_bytes"] + c["wr_bytes"],
                    c["rd_weight_bytes"],
                    c["pb_read_bytes"],
                    layout.tiles,
                    r.predicted,
                    [int(v) for v in r.logits],
                )
            )
            res.pb_series.append(layout.tiles * cfg.tile_bytes)
            new = policy.after(i, q, s)
            if new is not None and new != policy.cache:
                server_free = set_cache(new, server_free)
                res.updates_at.append(i)
            if progress is not None:
                progress.update(1)
        return res
