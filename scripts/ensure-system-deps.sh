#!/usr/bin/env bash
# Installs the Debian packages the local sandbox and the languages need, or says exactly what is missing.
# The languages' packages come from their folders (runners/*/language.json "debian_packages"), installed
# only when the language's toolchain is not on the sandbox's PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
# The sandbox's seccomp filter is compiled by libseccomp (loaded by the pyseccomp binding).
/sbin/ldconfig -p 2>/dev/null | grep -q 'libseccomp\.so\.2 ' || missing+=(libseccomp2)
# The sandbox's launcher is built static from C (make setup): a compiler and the static C library.
command -v cc >/dev/null 2>&1 || missing+=(gcc)
compgen -G '/usr/lib/*/libc.a' >/dev/null || compgen -G '/usr/lib/libc.a' >/dev/null || missing+=(libc6-dev)
# shellcheck disable=SC2207 # one package name per line, no spaces in Debian package names
missing+=($(python3 - <<'PY'
import glob, json, shutil
for path in sorted(glob.glob("runners/*/language.json")):
    language = json.load(open(path, encoding="utf-8"))
    search_path = language.get("env", {}).get("PATH", "/usr/local/bin:/usr/bin:/bin")
    if shutil.which(language["version_command"][0], path=search_path) is None:
        print("\n".join(language.get("debian_packages", [])))
PY
))
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "missing system packages: ${missing[*]}" >&2
  echo "install them with your package manager, e.g.: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
