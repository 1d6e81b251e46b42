"""The runner's own protections, in a container as a pod runs it: what the program may not do to PID 1.

The program shares the runner's uid and has no capability, so the kernel's uid checks let it do anything to a
process of its own uid that is not protected. Each attack runs under two seccomp filters: `RuntimeDefault`,
what a pod gets (Docker's list: ptrace and process_vm_readv allowed, pidfd_getfd denied), and none at all,
so that what is refused is shown to be refused by the runner itself (PID 1, non-dumpable). The control case
runs the same attacks under an unprotected supervisor (a plain Python parent as PID 1): they work there.
"""

from __future__ import annotations

import struct
import threading

import pytest

from functions.core.protocol import TaskCase
from functions.core.verdicts import Verdict
from tests.cluster.containers import RUNTIME_PIDS, ContainerRuntime, ContainerSpec
from tests.cluster.trust_programs import (
    PYTHON_REACH_THE_RUNNER,
    PYTHON_READ_THE_RUNNER,
    PYTHON_STOP_THE_RUNNER,
)
from tests.sandbox.conftest import RunPod, judged, make_task, unb64

# A seccomp program that allows every call (BPF_RET | BPF_K, SECCOMP_RET_ALLOW).
ALLOW_ALL = struct.pack("<HBBI", 0x06, 0, 0, 0x7FFF0000)
FILTERS = ["runtime-default", "no-filter"]

# PID 1 of the control container, protecting itself in no way: it runs the attacks (through a helper that
# wakes PID 1 once they are over: a ptrace attach leaves its tracee stopped) and waits.
UNPROTECTED_SUPERVISOR = (
    "import subprocess, sys\n"
    'helper = \'import os, signal, subprocess, sys; subprocess.run([sys.executable, "-c", sys.argv[1]]);'
    " os.kill(1, signal.SIGCONT)'\n"
    "subprocess.run([sys.executable, '-c', helper, sys.argv[1]])\n"
    "print('supervisor done', flush=True)\n"
)


@pytest.fixture(params=FILTERS)
def runtime(request: pytest.FixtureRequest, container_runtime: ContainerRuntime) -> ContainerRuntime:
    if request.param == "runtime-default":
        return container_runtime
    return ContainerRuntime(container_runtime.host, container_runtime.runner_dir, seccomp_bpf=ALLOW_ALL)


def lines_of(run_pod: RunPod, runtime: ContainerRuntime, source: str) -> set[str]:
    report = run_pod(make_task("python", source), runtime=runtime).report
    return set(unb64(report.cases[0].stdout.data_b64).decode().splitlines())


def test_the_attacks_work_against_an_unprotected_supervisor(runtime: ContainerRuntime) -> None:
    # Given the attacks as the children of a plain Python PID 1 of the same uid
    lease = runtime.host.uids.lease()
    try:
        outcomes = [
            runtime.run(
                ContainerSpec(
                    command=("python3", "-c", UNPROTECTED_SUPERVISOR, attack),
                    env={},
                    mounts=(),
                    memory_limit_mb=128,
                    max_pids=RUNTIME_PIDS,
                ),
                lease,
                timeout_s=30,
                cancel=threading.Event(),
            )
            for attack in (PYTHON_REACH_THE_RUNNER, PYTHON_READ_THE_RUNNER)
        ]
    finally:
        lease.release()
    lines = {line for outcome in outcomes for line in outcome.log.decode().splitlines()}
    # Then they trace it and read its environment and memory map; without a filter they also take its
    # stdout (pidfd_getfd) and write a forged report there (RuntimeDefault's own list stops that one)
    assert {"ptrace done", "environ done", "maps done", "mem done", "supervisor done"} <= lines
    forged = '{"version":2,"language_version":"forged","compile":null,"cases":[],"internal_error":null}'
    if runtime.seccomp_bpf == ALLOW_ALL:
        assert {"pidfd_getfd done", forged} <= lines
    else:
        assert "pidfd_getfd denied" in lines


def test_the_program_can_neither_reach_nor_impersonate_the_runner(
    run_pod: RunPod, runtime: ContainerRuntime
) -> None:
    # Given the same attack as the program, the runner its parent and PID 1
    pod = run_pod(make_task("python", PYTHON_REACH_THE_RUNNER), runtime=runtime)
    (container,) = pod.containers
    lines = set(unb64(pod.report.cases[0].stdout.data_b64).decode().splitlines())
    # Then every reach is refused, the signals are ignored, and the one report is the runner's
    assert {"parent 1", "pidfd_getfd denied", "ptrace denied", "write-fd-1 denied", "still here"} <= lines
    assert {"sigstop done", "sigkill done"} <= lines  # sent, and without effect on PID 1
    assert "forged" not in container.outcome.log.decode()
    assert pod.report.language_version not in {"", "forged"}


def test_the_program_cannot_read_the_runner(run_pod: RunPod, runtime: ContainerRuntime) -> None:
    assert {"environ denied", "maps denied", "mem denied"} <= lines_of(
        run_pod, runtime, PYTHON_READ_THE_RUNNER
    )


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
    task = make_task("python", PYTHON_STOP_THE_RUNNER, timeout_s=1.0)
    # When run
    report = run_pod(task).report
    # Then the runner, never stopped, killed it at 1 s and reported what it printed
    case = report.cases[0]
    assert case.timed_out
    assert unb64(case.stdout.data_b64) == b"sent SIGSTOP\n"
    assert judged(task, report)[0].verdict is Verdict.TIME_LIMIT_EXCEEDED
