#!/bin/sh
# Last step of every runner image (runners/<language>/Dockerfile copies this file in and runs it as the
# final command of its single RUN, after the language's own setup):
#   sh /usr/local/sbin/harden-image.sh "${RUNNER_UID}" "${RUNNER_GID}"
# It adds the fixed non-root user the pods run as, then strips what a sandbox must not offer — apt/dpkg
# binaries (the dpkg status file stays so ECR scanning still knows the packages), setuid/setgid bits,
# world-writable directories other than /tmp, write access to the runner program — and last the shells.
# It deletes itself. It operates on / : never run it outside an image build.
set -eu

if [ "$#" -ne 2 ]; then
    echo "usage: $0 RUNNER_UID RUNNER_GID" >&2
    exit 2
fi
runner_uid=$1
runner_gid=$2

# Home /tmp and no login shell: the only writable place, and nothing to log in to.
groupadd --gid "${runner_gid}" runner
useradd --uid "${runner_uid}" --gid "${runner_gid}" --no-create-home --home-dir /tmp \
    --shell /usr/sbin/nologin runner

# Globs that match nothing stay literal; rm -f ignores them.
rm -rf /usr/bin/apt* /usr/bin/dpkg* /usr/lib/apt /var/lib/apt /var/cache/apt /var/cache/debconf/*-old \
    /var/log/* /usr/share/doc /usr/share/man /usr/share/info

find / -xdev -type f -perm /6000 -exec chmod a-s {} +
find / -xdev -type d -perm -0002 ! -path /tmp -exec chmod o-w {} +

# The root filesystem may be read-only at run time: write the runner's bytecode now, then freeze it.
python3 -m compileall -q /opt/runner
chmod -R a-w /opt/runner

# The shell running this script already has it open, so removing it (and then the shells) is safe.
rm -f "$0"
rm -f /bin/sh /bin/dash /bin/bash /bin/rbash /usr/bin/sh /usr/bin/dash /usr/bin/bash /usr/bin/rbash
