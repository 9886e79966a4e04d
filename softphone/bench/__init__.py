"""Benchmarks: ``softphone bench ...``; ``cli.main(argv)`` is the entry point.

- ``traces``, ``jitter`` and ``oracle``: the jitter buffer and playout under seeded network
  traces, against hindsight references (``bench traces|jitter|jitter-report``); ``jitter_report``
  prints the table, with PJSIP's jitter buffer (``pjsip_jbuf``) replayed on the same traces;
- ``call`` (with ``call_cpu``, ``call_latency``, ``call_device`` and ``call_peers``): real calls'
  CPU, mouth-to-ear latency and device xruns (``bench cpu|latency|device``);
- ``rtsp`` (with ``rtsp_runs`` and ``rtsp_report``): the RTSP player's time to the first picture
  and its rendering (``bench rtsp-first-frame|rtsp-render``);
- ``tui``: how fast a key press reaches the screen while a call runs and video plays
  (``bench tui``);
- ``reliability``: the reliability campaign (``bench reliability ...``, ``make reliability``):
  fuzzing, SIPp load, scanners, faults and the soak, in one table of targets.

The benchmarks that start peers take them from the peer lab (``softphone.lab``) and keep their
files in a work directory (``workdir``).
"""

from __future__ import annotations
