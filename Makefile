# softphone: the two commands a person needs are `make run` and `make test`.
# Both create .venv and install what the Python packages need from Debian when run as root.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
PIP     := $(VENV)/bin/pip

# Shared libraries the Python packages load at run time (opuslib -> libopus, sounddevice -> PortAudio).
SYS_LIBS := libopus0 libportaudio2 libspeexdsp1
# Real peers the interop tests run against, all on 127.0.0.1 (see tests/interop/).
# jackd2: a paced virtual sound card (dummy driver) for the real device path.
# GStreamer's RTSP server (run by Debian's python3 with GObject bindings) plays the cameras and
# media servers; ffmpeg makes the on-demand test file and checks the lab.
RTSP_LAB := gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 python3-gi gstreamer1.0-plugins-base \
            gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
            gstreamer1.0-libav gstreamer1.0-x ffmpeg
# kamailio-presence-modules: the presence server (PUBLISH, SUBSCRIBE/NOTIFY, message waiting).
# iproute2 and nftables: the NAT lab's network namespaces and masquerading router.
# sip-tester (SIPp): the interop tests' scripted peer for what baresip 1.0 cannot do: reliable
# provisional responses (PRACK), session timers and UPDATE (tests/interop/test_prack_timers.py).
# linphone-cli (linphonec, liblinphone 5.1): the interop tests' second phone, for what baresip 1.0
# cannot do: Replaces (attended transfer as transferee and as target), 100rel, session timers
# (tests/interop/test_linphone.py).
# baresip-ffmpeg: baresip's avcodec module (H.264 through FFmpeg) for the H.264 video calls
# (tests/interop/test_video_h264.py); mediastreamer2-plugin-openh264: linphonec's H.264
# (tests/interop/test_linphone_video.py).
# The NAT lab's relays (tests/interop/test_nat_lab.py, test_rtpengine.py): coturn as STUN/TURN
# server, rtpengine (userspace only, no kernel module) as a provider's media relay beside Kamailio
# (whose rtpengine module ships in the kamailio package).
NAT_LAB  := coturn rtpengine-daemon
PEERS    := kamailio kamailio-tls-modules kamailio-presence-modules baresip openssl tmux jackd2 \
            iproute2 nftables sip-tester linphone-cli baresip-ffmpeg \
            mediastreamer2-plugin-openh264 $(NAT_LAB) $(RTSP_LAB)
# The reliability campaign's own peers: SIPp (sip-tester) drives the load, sipvicious scans
# (the network namespaces and packet loss use iproute2 and nftables, in PEERS).
RELIABILITY_PEERS := sip-tester sipvicious

.PHONY: run test setup test-setup sysdeps peers lint typecheck bench reliability reliability-report clean

# apt_ensure(packages, strict): install what is missing when root; otherwise print the command.
# strict=1 fails when something is missing and we cannot install it.
define apt_ensure
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "Installing system packages:$$missing"; \
	    apt-get update -q >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing >/dev/null \
	      || { echo "apt-get install failed for:$$missing"; exit 1; }; \
	  else \
	    echo "Missing system packages:$$missing"; \
	    echo "Install them with: sudo apt-get install$$missing"; \
	    if [ "$(2)" = 1 ]; then exit 1; fi; \
	  fi; \
	fi
endef

run: setup
	$(VENV)/bin/softphone

setup: sysdeps $(VENV)/.installed

sysdeps:
	$(call apt_ensure,$(SYS_LIBS),0)

peers:
	$(call apt_ensure,$(SYS_LIBS) $(PEERS),1)

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml $(VENV)/.installed
	$(PIP) install -q -e '.[test]'
	touch $@

test-setup: peers $(VENV)/.installed $(VENV)/.test-installed

# The interop tests spend most of their time waiting on real peers and real-time audio, so they
# run in a second pytest beside the others (their output follows, whole); both must pass.
test: test-setup
	$(VENV)/bin/ruff check softphone tests
	$(VENV)/bin/ruff format --check softphone tests
	$(VENV)/bin/lint-imports
	@log=$$(mktemp); \
	$(PY) -m pytest -p no:cacheprovider -m interop > $$log 2>&1 & interop=$$!; \
	$(PY) -m pytest -p no:cacheprovider -m "not interop"; unit=$$?; \
	wait $$interop; peers=$$?; \
	echo "===== interop tests (run alongside) ====="; cat $$log; rm -f $$log; \
	echo "unit tests: exit $$unit; interop tests: exit $$peers"; \
	test $$unit -eq 0 && test $$peers -eq 0

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check softphone tests
	$(VENV)/bin/ruff format --check softphone tests
	$(VENV)/bin/lint-imports

typecheck: $(VENV)/.test-installed
	$(VENV)/bin/mypy

# Benchmarks (not tests: make test never runs them). Results and how to read them: README.md.
BENCH_DIR ?= /tmp/softphone-bench
SPEECH    := tests/data/audio/speech16k.wav
bench: test-setup
	mkdir -p $(BENCH_DIR)
	$(VENV)/bin/softphone bench traces --out $(BENCH_DIR)/traces.npz --seed 1
	-$(VENV)/bin/softphone bench jitter-report --trace $(BENCH_DIR)/traces.npz --speech $(SPEECH) --codec opus
	-$(VENV)/bin/softphone bench jitter-report --trace $(BENCH_DIR)/traces.npz --speech $(SPEECH) --codec pcmu
	-$(VENV)/bin/softphone bench latency
	-$(VENV)/bin/softphone bench cpu --seconds 60
	-$(VENV)/bin/softphone bench device --seconds 60
	-$(VENV)/bin/softphone bench mouth-to-ear --clicks 20
	-$(VENV)/bin/softphone bench rtsp-first-frame --runs 20 --transport tcp
	-$(VENV)/bin/softphone bench tui --seconds 20
	-$(VENV)/bin/softphone bench tui --seconds 20 --same-loop
	-$(VENV)/bin/softphone bench rtsp-render --seconds 20
	-$(VENV)/bin/softphone bench video --calls 3 --seconds 20

# The reliability campaign (not tests: make test only replays its corpus, tests/fuzz). Fuzzing
# runs FUZZ_RUNS inputs per target (at most FUZZ_MAX_TIME s each); the soak lasts SOAK_MINUTES
# (make reliability SOAK_MINUTES=60 for the hour). Network namespaces need root. One table of
# figures against their targets at the end; the exit status is 1 when a target is missed.
# Each part also leaves its rows in RELIABILITY_DIR/<part>.json: parts run apart (softphone bench
# reliability soak --workdir DIR ...) make one table with make reliability-report.
FUZZ_RUNS       ?= 1000000
# The slowest target (sip_ua, the whole user agent per input) runs ~440 inputs/s on one core:
# 2700 s lets every target reach FUZZ_RUNS; the faster ones stop at FUZZ_RUNS long before.
FUZZ_MAX_TIME   ?= 2700
SOAK_MINUTES    ?= 5
RELIABILITY_DIR ?= /tmp/softphone-reliability
$(VENV)/.reliability-installed: pyproject.toml $(VENV)/.installed
	$(PIP) install -q -e '.[reliability]'
	touch $@

reliability: test-setup $(VENV)/.reliability-installed
	$(call apt_ensure,$(RELIABILITY_PEERS),1)
	mkdir -p $(RELIABILITY_DIR)
	$(VENV)/bin/softphone bench reliability all --workdir $(RELIABILITY_DIR) \
	  --runs $(FUZZ_RUNS) --max-time $(FUZZ_MAX_TIME) --minutes $(SOAK_MINUTES)

reliability-report:
	$(VENV)/bin/softphone bench reliability report $(RELIABILITY_DIR)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
