"""The reliability campaign: ``softphone bench reliability ...`` (``make reliability``).

- ``targets``: every parser and depacketiser that reads what the network or a file sends, as a
  fuzz target with its documented error types (the contract: nothing else may escape);
  ``seeds`` builds their seed corpus (``tests/fuzz/<target>/``) from tests/data;
- ``fuzz`` and ``fuzz_worker``: coverage-guided fuzzing with atheris (libFuzzer), one child
  process per target, crashes kept as corpus entries that ``make test`` replays;
- ``load``: SIPp floods, call-rate ramps and held calls against ``softphone listen`` and
  baresip in the same run, and sipvicious against a listening phone;
- ``faults``: registrar restart and outage, packet loss mid-call, RTSP server restart, kill -9
  during a recorded call, each with its recovery time;
- ``soak``: an auto-answering phone taking calls for minutes or an hour, RSS/threads/fds sampled;
- ``report``: the one table of figures against their targets; ``cli``: the command line.

Everything talks to 127.0.0.1 or to network namespaces it creates and removes; every process
is started by us and stopped by its pid.
"""

from __future__ import annotations
