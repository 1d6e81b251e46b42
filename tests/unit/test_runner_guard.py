"""The runner's own protections, in a container as a pod runs it: what the program may not do to PID 1.

The container has the `RuntimeDefault` seccomp profile (ptrace, pidfd_getfd and process_vm_readv allowed)
and the program shares the runner's uid, so only the runner's protections stand in the way. The control
case runs the same attack under an unprotected supervisor (a plain Python parent as PID 1): the attack
works there, so its failure under the runner is the runner's doing.
"""

from __future__ import annotations

import threading

import pytest

from functions.core.protocol import TaskCase
from functions.core.verdicts import Verdict
from tests.cluster.containers import RUNTIME_PIDS, ContainerRuntime, ContainerSpec
from tests.cluster.trust_programs import PYTHON_F1, PYTHON_F2, PYTHON_F3
from tests.unit.conftest import RunPod, judged, make_task, needs_toolchain, unb64

pytestmark = needs_toolchain("python")

# PID 1 of the control container, protecting itself in no way: it runs the attack (through a helper that
# wakes PID 1 once the attack is over: a ptrace attach leaves its tracee stopped) and waits.
UNPROTECTED_SUPERVISOR = (
    "import subprocess, sys\n"
    'helper = \'import os, signal, subprocess, sys; subprocess.run([sys.executable, "-c", sys.argv[1]]);'
    " os.kill(1, signal.SIGCONT)'\n"
    "subprocess.run([sys.executable, '-c', helper, sys.argv[1]])\n"
    "print('supervisor done', flush=True)\n"
)


def test_the_attack_works_against_an_unprotected_supervisor(container_runtime: ContainerRuntime) -> None:
    # Given the attack as the child of a plain Python PID 1 of the same uid, with the runner's seccomp profile
    spec = ContainerSpec(
        command=("python3", "-c", UNPROTECTED_SUPERVISOR, PYTHON_F1),
        env={},
        mounts=(),
        memory_limit_mb=128,
        max_pids=RUNTIME_PIDS,
    )
    lease = container_runtime.host.uids.lease()
    try:
        outcome = container_runtime.run(spec, lease, timeout_s=30, cancel=threading.Event())
    finally:
        lease.release()
    log = outcome.log.decode()
    # Then it takes the supervisor's stdout, writes its forged report there, and traces it
    assert "pidfd_getfd done" in log
    assert '"language_version":"forged"' in log
    assert "ptrace done" in log
    assert "supervisor done" in log


def test_the_program_can_neither_reach_nor_impersonate_the_runner(run_pod: RunPod) -> None:
    # Given the same attack as the program, the runner its parent and PID 1
    task = make_task("python", PYTHON_F1)
    (container,) = run_pod(task).containers
    report = container.report
    lines = set(unb64(report.cases[0].stdout.data_b64).decode().splitlines())
    # Then every reach is refused, the signals are ignored, and the one report is the runner's
    assert {"parent 1", "pidfd_getfd denied", "ptrace denied", "write-fd-1 denied", "still here"} <= lines
    assert {"sigstop done", "sigkill done"} <= lines  # sent, and without effect on PID 1
    assert "forged" not in container.outcome.log.decode()
    assert report.language_version not in {"", "forged"}


def test_the_program_cannot_read_the_runner(run_pod: RunPod) -> None:
    report = run_pod(make_task("python", PYTHON_F2)).report
    lines = set(unb64(report.cases[0].stdout.data_b64).decode().splitlines())
    assert {"environ denied", "maps denied", "mem denied"} <= lines


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM"])
def test_signals_with_a_python_handler_do_not_reach_the_runner(run_pod: RunPod, signal_name: str) -> None:
    # Given a program that sends PID 1 the signals Python would turn into exceptions
    source = f"import os, signal\nos.kill(1, signal.{signal_name})\nprint('sent')\n"
    task = make_task("python", source, cases=[TaskCase(), TaskCase()])
    # When run for two cases / Then the runner went on to the second and reported both
    report = run_pod(task).report
    assert [case.exit_code for case in report.cases] == [0, 0]


def test_a_program_that_stops_the_runner_is_still_killed_at_its_limit(run_pod: RunPod) -> None:
    # Given a program that SIGSTOPs PID 1, then never ends, with a 1 s limit
    task = make_task("python", PYTHON_F3, timeout_s=1.0)
    # When run
    report = run_pod(task).report
    # Then the runner, never stopped, killed it at 1 s and reported what it printed
    case = report.cases[0]
    assert case.timed_out
    assert unb64(case.stdout.data_b64) == b"sent SIGSTOP\n"
    assert judged(task, report)[0].verdict is Verdict.TIME_LIMIT_EXCEEDED
