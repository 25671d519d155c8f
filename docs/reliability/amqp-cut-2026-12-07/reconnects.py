"""From a trial's logs: how long after the power-off the services' oslo.messaging connections that were
on the dead broker came back (their 'Reconnected to AMQP server' lines; first and last per node)."""
import datetime as dt
import re
import sys
from pathlib import Path

trial = Path(sys.argv[1])
t0 = float(re.search(r"at (\d+\.\d+)", (trial / "summary.txt").read_text()).group(1))
ids: dict[str, set[str]] = {}
for f in sorted(trial.glob("*-logs.txt")):
    node = f.name.removesuffix("-logs.txt")
    unreachable, back = set(), []
    for line in f.read_text().splitlines():
        m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+) .*?\[([0-9a-f-]{36})\] (.*)", line)
        if not m:
            continue
        t = dt.datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=dt.timezone.utc).timestamp() - t0
        if not 0 <= t <= 120:
            continue
        if "is unreachable" in m[3]:
            unreachable.add(m[2])
        elif m[3].startswith("Reconnected") and m[2] in unreachable:
            back.append(t)
    print(f"{node}: {len(unreachable)} connections lost, " + (
        f"back {min(back):.1f}-{max(back):.1f} s after the power-off" if back else "none back in the logs"))
