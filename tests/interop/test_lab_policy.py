"""The lab's policies, checked without any peer (so these tests are NOT marked ``interop``).

- ``lab_support.require_binary``: a missing peer skips outside CI and fails in CI.
- ``tests/conftest.py``'s interop gate: in CI a run with no passing ``interop`` test fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lab_support
import pytest

ROOT_CONFTEST = Path(__file__).parents[1] / "conftest.py"
MISSING = "softphone-lab-no-such-peer"


def test_require_binary_finds_present_binary() -> None:
    assert Path(lab_support.require_binary("sh")).name == "sh"


def test_missing_binary_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SOFTPHONE_REQUIRE_INTEROP", raising=False)
    with pytest.raises(pytest.skip.Exception, match=MISSING):
        lab_support.require_binary(MISSING)


@pytest.mark.parametrize(("var", "value"), [("CI", "true"), ("SOFTPHONE_REQUIRE_INTEROP", "1")])
def test_missing_binary_fails_in_ci(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("SOFTPHONE_REQUIRE_INTEROP", raising=False)
    monkeypatch.setenv(var, value)
    with pytest.raises(pytest.fail.Exception, match=MISSING):
        lab_support.require_binary(MISSING)


SAMPLE_TESTS = """
import pytest

def test_plain() -> None:
    assert True

@pytest.mark.interop
def test_peer() -> None:
    {body}

class TestInteropByName:  # "interop" in a name is not the marker
    def test_interop_named(self) -> None:
        assert True
"""


def _run_gate(
    tmp_path: Path, *, body: str, env: dict[str, str], args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(ROOT_CONFTEST.read_text())
    (tmp_path / "test_sample.py").write_text(SAMPLE_TESTS.format(body=body))
    base = {k: v for k, v in os.environ.items() if k not in {"CI", "SOFTPHONE_REQUIRE_INTEROP"}}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "markers=interop: x",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            *args,
            str(tmp_path),
        ],
        cwd=tmp_path,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("body", "env", "code", "gate_message"),
    [
        ("pytest.skip('no peer')", {"CI": "true"}, 1, True),
        ("pytest.skip('no peer')", {"SOFTPHONE_REQUIRE_INTEROP": "1"}, 1, True),
        ("pytest.skip('no peer')", {}, 0, False),
        ("pytest.skip('no peer')", {"CI": "true", "SOFTPHONE_REQUIRE_INTEROP": "0"}, 0, False),
        ("assert True", {"CI": "true"}, 0, False),
    ],
    ids=[
        "ci-all-skipped",
        "required-all-skipped",
        "local-skipped-ok",
        "ci-opt-out",
        "ci-one-passed",
    ],
)
def test_interop_gate(
    tmp_path: Path, body: str, env: dict[str, str], code: int, gate_message: bool
) -> None:
    result = _run_gate(tmp_path, body=body, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == code, output
    assert ("interop gate: no test marked 'interop' passed" in output) is gate_message, output


def test_a_run_that_leaves_the_interop_tests_to_another_pytest_is_not_gated(
    tmp_path: Path,
) -> None:
    """make test runs ``-m "not interop"`` beside ``-m interop``; only the latter is gated."""
    unit = _run_gate(
        tmp_path, body="pytest.skip('no peer')", env={"CI": "true"}, args=("-m", "not interop")
    )
    assert unit.returncode == 0, unit.stdout + unit.stderr
    assert "interop gate" not in unit.stdout + unit.stderr
    interop = _run_gate(
        tmp_path, body="pytest.skip('no peer')", env={"CI": "true"}, args=("-m", "interop")
    )
    assert interop.returncode == 1
    assert "interop gate: no test marked 'interop' passed" in interop.stdout + interop.stderr
