# footfall: `make demo` and `make test` work on a fresh clone; each installs what it needs.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q
APT_TEST := libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins junit4 openjdk-17-jdk-headless wavpack
APT_DEMO := libportaudio2

.PHONY: venv-qnn demo test test-all model bench bench-engine venv-edge venv-full apt-demo apt-test clean lock sounds-small

$(BIN)/python:
	$(PY) -m venv $(VENV)

LOCKS := requirements
# every venv installs exactly its lock file (every package, transitive ones too, pinned); the
# project itself goes in with --no-deps, so pip resolves nothing beyond the lock. `make lock`
# resolves the locks again from pyproject.toml and requirements/qnn.in.

# device side only: numpy, scipy, soundfile, soxr, typer, rich, sounddevice and the runtimes
$(VENV)/.edge-stamp: $(BIN)/python $(LOCKS)/edge.lock pyproject.toml
	$(PIP) -r $(LOCKS)/edge.lock
	$(PIP) --no-deps --no-build-isolation -e .
	touch $@

# everything: torch 2.13.0 CPU, the export stack, test and plotting tools
$(VENV)/.full-stamp: $(VENV)/.edge-stamp $(LOCKS)/full.lock
	$(PIP) -r $(LOCKS)/full.lock
	touch $@

# the project's packages (pyproject.toml's) compiled as a wheel install compiles them: an editable
# install leaves that to each import, and where no bytecode is written (PYTHONDONTWRITEBYTECODE, a
# read-only checkout) every edge-run compiled its modules again, 25 ms a run. compileall redoes only
# what changed (40 ms when nothing did), so every venv target runs it.
PACKAGES := edge train export release bench footfall

venv-edge: $(VENV)/.edge-stamp
	$(BIN)/python -m compileall -q $(PACKAGES)
venv-full: $(VENV)/.full-stamp
	$(BIN)/python -m compileall -q $(PACKAGES)

# Qualcomm HTP simulator (onnxruntime-qnn) in its own venv, driven by export/qnn_worker.py
.venv-qnn/.stamp: $(LOCKS)/qnn.lock
	test -x .venv-qnn/bin/python || $(PY) -m venv .venv-qnn
	.venv-qnn/bin/pip install --disable-pip-version-check -q -r $(LOCKS)/qnn.lock
	touch $@

venv-qnn: .venv-qnn/.stamp

# resolve every lock again (fresh venvs in a temporary folder), then reinstall from them
lock:
	$(PY) scripts/lock.py refresh

apt-demo:
	@dpkg -s $(APT_DEMO) >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_DEMO)) || echo "warning: could not apt-get install $(APT_DEMO) (the microphone needs libportaudio2)"

apt-test:
	@dpkg -s $(APT_TEST) >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(APT_TEST))

# what a runner sees after the bundled sample run (the README shows it); `make demo DEMO_ARGS=--verbose`
# adds the engineer's lines (the model, the timing, the count against the true steps)
demo: venv-edge apt-demo
	@$(BIN)/python -m edge.demo $(DEMO_ARGS)

# the small recorded-sound corpus (teeworlds-data, 7.6 MB, via apt-get download) the tests use
sounds-small: venv-full apt-test
	$(BIN)/footfall data sounds --profile small

test: venv-full venv-qnn apt-test sounds-small
	$(BIN)/python -m pytest -q --durations=15

test-all: venv-full apt-test
	$(BIN)/python -m pytest -q -m "slow or e2e or not slow"

# rebuild the bundled default model and sample from scratch with the full pipeline, as its recipe
# says (train/recipes/default.yaml; `footfall model --dry-run` prints the commands)
model: venv-full venv-qnn apt-test
	$(BIN)/footfall model --recipe train/recipes/default.yaml

# benchmark the artifacts of `make model` against their float student, the trained reference (no teacher in the
# bundled recipe; report in runs/default/bench)
bench: venv-full apt-test
	[ -f data/realset/manifest.csv ] || ($(BIN)/footfall data sounds --profile full && $(BIN)/footfall data realset --out data/realset)
	$(BIN)/footfall bench --artifacts runs/default/export0 --teacher runs/default/student0/best.pt --student runs/default/student0/best.pt --full-size cnn14 --realset data/realset --out runs/default/bench

# what edge-run costs beside its network (the bundled model; docs/engine has a run of it)
bench-engine: venv-full apt-test
	[ -f data/realset/manifest.csv ] || ($(BIN)/footfall data sounds --profile full && $(BIN)/footfall data realset --out data/realset)
	$(BIN)/footfall bench-engine --realset data/realset --out runs/bench-engine

clean:
	rm -rf $(VENV) .venv-qnn .pytest_cache .cache
