"""Hostile programs for the pod's trust boundary (test_kubernetes_trust.py), one per language where it applies.

Each attack prints one line per attempt, `<attempt> done` or `<attempt> denied`, so the test reads what the
kernel allowed from the program's own output. Java and JavaScript have no raw system calls: they run the
Python attack as a child (python3 is in every runner image: the runner itself is Python), and add what their
own runtime can do to PID 1.
"""

from __future__ import annotations

import json

# A report a forger would write in place of the runner's (it never gets the chance).
FORGED_REPORT = '{"version":2,"language_version":"forged","compile":null,"cases":[],"internal_error":null}\n'
# The same as a string literal of C++, Java and JavaScript (JSON's escapes are theirs too).
FORGED_LITERAL = json.dumps(FORGED_REPORT)

# Take the runner's report pipe, trace it, write to its stdout, stop it, kill it.
PYTHON_REACH_THE_RUNNER = f"""
import ctypes, os, signal
libc = ctypes.CDLL(None, use_errno=True)
SYS_PIDFD_GETFD, PTRACE_ATTACH = 438, 16
FORGED = {FORGED_REPORT.encode()!r}

def attempt(name, action):
    try:
        action()
    except OSError:
        print(name, "denied", flush=True)
    else:
        print(name, "done", flush=True)

def check(result):
    if result < 0:
        raise OSError(ctypes.get_errno(), "refused")
    return result

def steal_report_pipe():
    pipe = check(libc.syscall(SYS_PIDFD_GETFD, os.pidfd_open(1), 1, 0))
    os.write(pipe, FORGED)

def write_stdout_of_pid_1():
    with open("/proc/1/fd/1", "wb") as stdout:
        stdout.write(FORGED)

print("parent", os.getppid(), flush=True)
attempt("pidfd_getfd", steal_report_pipe)
attempt("ptrace", lambda: check(libc.ptrace(PTRACE_ATTACH, 1, None, None)))
attempt("write-fd-1", write_stdout_of_pid_1)
attempt("sigstop", lambda: os.kill(1, signal.SIGSTOP))
attempt("sigkill", lambda: os.kill(1, signal.SIGKILL))
print("still here", flush=True)
"""

CPP_REACH_THE_RUNNER = f"""
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>
static const char forged[] = {FORGED_LITERAL};
static void attempt(const char* name, bool done) {{
  std::printf("%s %s\\n", name, done ? "done" : "denied");
  std::fflush(stdout);
}}
int main() {{
  std::printf("parent %d\\n", getppid());
  int pidfd = syscall(SYS_pidfd_open, 1, 0);
  int pipe = pidfd < 0 ? -1 : syscall(SYS_pidfd_getfd, pidfd, 1, 0);
  if (pipe >= 0) write(pipe, forged, std::strlen(forged));
  attempt("pidfd_getfd", pipe >= 0);
  attempt("ptrace", ptrace(PTRACE_ATTACH, 1, nullptr, nullptr) == 0);
  int out = open("/proc/1/fd/1", O_WRONLY);
  if (out >= 0) write(out, forged, std::strlen(forged));
  attempt("write-fd-1", out >= 0);
  attempt("sigstop", kill(1, SIGSTOP) == 0);
  attempt("sigkill", kill(1, SIGKILL) == 0);
  std::puts("still here");
}}
"""

JAVA_REACH_THE_RUNNER = f"""
import java.io.FileOutputStream;
public class Main {{
  public static void main(String[] args) throws Exception {{
    String attack = {json.dumps(PYTHON_REACH_THE_RUNNER)};
    new ProcessBuilder("python3", "-c", attack).inheritIO().start().waitFor();
    boolean killed = ProcessHandle.of(1).map(ProcessHandle::destroyForcibly).orElse(false);
    System.out.println("destroy-forcibly " + (killed ? "done" : "denied"));
    try (FileOutputStream out = new FileOutputStream("/proc/1/fd/1")) {{
      out.write({FORGED_LITERAL}.getBytes());
      System.out.println("java-write-fd-1 done");
    }} catch (java.io.IOException e) {{
      System.out.println("java-write-fd-1 denied");
    }}
  }}
}}
"""

JAVASCRIPT_REACH_THE_RUNNER = f"""
const {{ spawnSync }} = require("child_process");
const fs = require("fs");
spawnSync("python3", ["-c", {json.dumps(PYTHON_REACH_THE_RUNNER)}], {{ stdio: "inherit" }});
for (const [name, action] of [
  ["node-sigstop", () => process.kill(1, "SIGSTOP")],
  ["node-write-fd-1", () => fs.writeFileSync("/proc/1/fd/1", {FORGED_LITERAL})],
]) {{
  try {{ action(); console.log(name + " done"); }} catch (e) {{ console.log(name + " denied"); }}
}}
"""

REACH_THE_RUNNER = {
    "python": PYTHON_REACH_THE_RUNNER,
    "cpp": CPP_REACH_THE_RUNNER,
    "java": JAVA_REACH_THE_RUNNER,
    "javascript": JAVASCRIPT_REACH_THE_RUNNER,
}

# Read the runner's environment (the task), its memory map, and open its memory.
PYTHON_READ_THE_RUNNER = """
import os
def attempt(name, action):
    try:
        action()
    except OSError:
        print(name, "denied", flush=True)
    else:
        print(name, "done", flush=True)

attempt("environ", lambda: open("/proc/1/environ", "rb").read())
attempt("maps", lambda: open("/proc/1/maps", "rb").read())
attempt("mem", lambda: open("/proc/1/mem", "rb").close())  # opening it is what a reader of the task needs
print("own-env", " ".join(sorted(os.environ)), flush=True)
"""

CPP_READ_THE_RUNNER = """
#include <cstdio>
#include <fcntl.h>
#include <unistd.h>
static void attempt(const char* name, const char* path, bool read_it) {
  char buffer[4096];
  int fd = open(path, O_RDONLY);
  bool done = fd >= 0 && (!read_it || read(fd, buffer, sizeof buffer) >= 0);
  std::printf("%s %s\\n", name, done ? "done" : "denied");
}
int main() {
  attempt("environ", "/proc/1/environ", true);
  attempt("maps", "/proc/1/maps", true);
  attempt("mem", "/proc/1/mem", false);
}
"""

JAVA_READ_THE_RUNNER = """
import java.io.RandomAccessFile;
import java.nio.file.*;
public class Main {
  public static void main(String[] args) {
    for (String name : new String[] {"environ", "maps", "mem"}) {
      try {
        if (name.equals("mem")) new RandomAccessFile("/proc/1/mem", "r").close();
        else Files.readAllBytes(Paths.get("/proc/1/" + name));
        System.out.println(name + " done");
      } catch (Exception e) {
        System.out.println(name + " denied");
      }
    }
  }
}
"""

JAVASCRIPT_READ_THE_RUNNER = """
const fs = require("fs");
for (const name of ["environ", "maps", "mem"]) {
  try {
    if (name === "mem") fs.closeSync(fs.openSync("/proc/1/mem", "r"));
    else fs.readFileSync("/proc/1/" + name);
    console.log(name + " done");
  } catch (e) { console.log(name + " denied"); }
}
"""

READ_THE_RUNNER = {
    "python": PYTHON_READ_THE_RUNNER,
    "cpp": CPP_READ_THE_RUNNER,
    "java": JAVA_READ_THE_RUNNER,
    "javascript": JAVASCRIPT_READ_THE_RUNNER,
}

# Stop the runner, then never end on its own.
PYTHON_STOP_THE_RUNNER = """
import os, signal
os.kill(1, signal.SIGSTOP)
os.kill(os.getppid(), signal.SIGSTOP)
print("sent SIGSTOP", flush=True)
while True:
    pass
"""

CPP_STOP_THE_RUNNER = """
#include <csignal>
#include <cstdio>
#include <unistd.h>
int main() {
  kill(1, SIGSTOP);
  kill(getppid(), SIGSTOP);
  std::puts("sent SIGSTOP");
  std::fflush(stdout);
  for (volatile unsigned long i = 0;; ++i) {}
}
"""

STOP_THE_RUNNER = {"python": PYTHON_STOP_THE_RUNNER, "cpp": CPP_STOP_THE_RUNNER}

# Many processes, each under the per-process address-space limit, together far over the memory limit.
CPP_MANY_CHILDREN = """
#include <cstdlib>
#include <cstdio>
#include <sys/wait.h>
#include <unistd.h>
int main() {
  for (int i = 0; i < 12; i++) {
    if (fork() == 0) {
      // volatile: the compiler may not drop a block that nothing reads
      volatile char* block = static_cast<volatile char*>(std::malloc(30u << 20));
      for (unsigned i = 0; block && i < (30u << 20); i += 4096) block[i] = 1;
      sleep(5);
      _exit(0);
    }
  }
  while (wait(nullptr) > 0) {}
  std::puts("done");
}
"""

# Python's own address-space limit (16 + 16 + 16 MB) leaves room for 20 MB per child.
PYTHON_MANY_CHILDREN = """
import os, time
for _ in range(12):
    if os.fork() == 0:
        block = bytearray(20 << 20)
        time.sleep(5)
        os._exit(0)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
print("done")
"""

CHILD_30_MB = "import time; block = bytearray(30 << 20); time.sleep(5)"

JAVA_MANY_CHILDREN = f"""
import java.util.*;
public class Main {{
  public static void main(String[] args) throws Exception {{
    List<Process> children = new ArrayList<>();
    for (int i = 0; i < 12; i++) children.add(new ProcessBuilder("python3", "-c", {json.dumps(CHILD_30_MB)}).start());
    for (Process child : children) child.waitFor();
    System.out.println("done");
  }}
}}
"""

JAVASCRIPT_MANY_CHILDREN = f"""
const {{ spawn }} = require("child_process");
let left = 12;
for (let i = 0; i < 12; i++) {{
  spawn("python3", ["-c", {json.dumps(CHILD_30_MB)}]).on("exit", () => {{ if (--left === 0) console.log("done"); }});
}}
"""

MANY_CHILDREN = {
    "python": PYTHON_MANY_CHILDREN,
    "cpp": CPP_MANY_CHILDREN,
    "java": JAVA_MANY_CHILDREN,
    "javascript": JAVASCRIPT_MANY_CHILDREN,
}

# CPU time of a process the program never reaps: a grandchild burns ~1 s and is orphaned.
PYTHON_ORPHAN_CPU = """
import os, time
if os.fork() == 0:
    if os.fork() == 0:
        end = time.process_time() + 1.0
        while time.process_time() < end:
            pass
    os._exit(0)
os.wait()
time.sleep(1.5)
print("done")
"""
