#!/usr/bin/env bash
# Pacemaker baseline for rcm_scale, measured on this machine in the same bench run: a single-node
# corosync + pacemaker cluster on loopback, N ocf:pacemaker:Dummy resources (ungrouped, so they may
# start in parallel, monitor every 5 s, like keelson's LooksAlive default), time from loading them to
# all Started, then the CPU of every pacemaker/corosync process (including the agent scripts they fork)
# over 15 s. Needs root and the Debian packages pacemaker and corosync; writes
# /etc/corosync/corosync.conf (bench machines only) and stops the daemons afterwards.
set -euo pipefail
N="${PACEMAKER_RESOURCES:-1000}"
work="$(mktemp -d /tmp/keelson-pcmk.XXXXXX)"
cleanup() {
  pkill pacemakerd 2>/dev/null || true
  for _ in $(seq 1 50); do pgrep -x pacemakerd >/dev/null || break; sleep 0.2; done
  pkill -9 -f 'pacemaker-' 2>/dev/null || true
  pkill corosync 2>/dev/null || true
  for _ in $(seq 1 50); do pgrep -x corosync >/dev/null || break; sleep 0.2; done
  pkill -9 -x corosync 2>/dev/null || true
  # libqb IPC directories of the daemons we killed (none of these ran before we started them).
  rm -rf /dev/shm/qb-* 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
if ! command -v pacemakerd >/dev/null || ! command -v corosync >/dev/null; then
  echo "pacemaker baseline: skipped (install the Debian packages pacemaker and corosync)"
  exit 0
fi
if pgrep -x corosync >/dev/null || pgrep -x pacemakerd >/dev/null; then
  echo "pacemaker baseline: skipped (a corosync/pacemaker is already running here)"
  exit 0
fi
cat > /etc/corosync/corosync.conf <<CONF
totem {
    version: 2
    cluster_name: keelsonbench
    transport: knet
    crypto_cipher: none
    crypto_hash: none
}
nodelist {
    node {
        ring0_addr: 127.0.0.1
        name: bench1
        nodeid: 1
    }
}
quorum {
    provider: corosync_votequorum
}
logging {
    to_stderr: no
    to_syslog: no
    to_logfile: yes
    logfile: $work/corosync.log
}
CONF
corosync -f >"$work/corosync.out" 2>&1 &
for _ in $(seq 1 100); do corosync-cfgtool -s >/dev/null 2>&1 && break; sleep 0.1; done
PCMK_logfile="$work/pacemaker.log" pacemakerd >"$work/pacemakerd.out" 2>&1 &
# Ready once a DC is elected and the CIB takes writes.
for _ in $(seq 1 240); do
  crm_mon -1 2>/dev/null | grep -q "Current DC: bench1" \
    && crm_attribute --type crm_config --name stonith-enabled --update false 2>/dev/null && break
  sleep 0.5
done
python3 - "$N" "$work/res.xml" <<'PY'
import sys
n, out = int(sys.argv[1]), sys.argv[2]
prims = ''.join(
    f'<primitive id="d{i}" class="ocf" provider="pacemaker" type="Dummy"><operations>'
    f'<op id="d{i}-mon" name="monitor" interval="5s"/></operations></primitive>' for i in range(n))
open(out, 'w').write(f'<resources>{prims}</resources>')
PY
start=$(date +%s.%N)
cibadmin --replace --scope resources --xml-file "$work/res.xml"
started=0
for _ in $(seq 1 3600); do
  started=$(crm_mon -1 --output-as=xml 2>/dev/null | grep -c 'role="Started"' || true)
  [ "$started" -ge "$N" ] && break
  sleep 1 # crm_mon on N resources is itself heavy: polling faster slows Pacemaker down
done
end=$(date +%s.%N)
echo "== Pacemaker $(pacemakerd --version | head -1 | awk '{print $2}') baseline: $N ocf:pacemaker:Dummy resources, monitor every 5 s =="
printf 'all Started                      : %8.2f s  (%s of %s started)\n' "$(echo "$end - $start" | bc)" "$started" "$N"
python3 - <<'PY'
import os, time
def cpu():
    out = {}
    for p in filter(str.isdigit, os.listdir('/proc')):
        try:
            comm = open(f'/proc/{p}/comm').read().strip()
            if comm.startswith('pacemaker') or comm == 'corosync':
                f = open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()
                out[p] = sum(int(x) for x in f[11:15])  # utime stime cutime cstime
        except OSError:
            pass
    return out
a, t = cpu(), time.time()
time.sleep(15)
b, dt = cpu(), time.time() - t
used = sum(v - a.get(p, v) for p, v in b.items()) / os.sysconf('SC_CLK_TCK')
print(f"idle CPU, pacemaker+corosync     : {100 * used / dt:8.2f} % of one core (agents' forks included)")
PY
