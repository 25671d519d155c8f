"""Runs INSIDE the lab image (Debian 12's python3 and OpenStack packages), driven by
test_checkers_openstack.py: `python3 openstack_checks.py JOBS.json` prints one JSON result per job.

Jobs:
- oslo: `oslo-config-validator --fatal-warnings` of one file against the option namespaces of the
  service that reads it. The namespaces' data comes from `oslo-config-generator --format yaml`, plus
  the keystoneauth options a section gets at run time from its `auth_type` (services register them
  dynamically, so the generated data lacks them); oslo's validator never reports unknown options
  of [keystone_authtoken], so that section is checked here against the same data, strictly.
- show-args: the command line Debian's init script would run (`/etc/init.d/NAME show-args`).
- host: the `host` a Neutron agent ends up with, from the config files its init script passes,
  resolved by oslo.config with Neutron's own option definition.
- cmd: any command; its exit code and output.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

import yaml


def generated(namespaces: list[str]) -> dict:  # type: ignore[type-arg]
    with tempfile.NamedTemporaryFile(suffix=".yaml") as out:
        argv = ["oslo-config-generator", "--format", "yaml", "--output-file", out.name]
        for ns in namespaces:
            argv += ["--namespace", ns]
        subprocess.run(argv, check=True, capture_output=True)
        with open(out.name) as fh:
            return yaml.safe_load(fh)  # type: ignore[no-any-return]


def sections(path: str) -> dict[str, dict[str, list[str]]]:
    from oslo_config import cfg

    found: dict[str, dict[str, list[str]]] = {}
    cfg.ConfigParser(path, found).parse()
    return found


def add_auth_options(data: dict, found: dict[str, dict[str, list[str]]]) -> None:  # type: ignore[type-arg]
    from keystoneauth1 import loading

    for group, opts in found.items():
        if "auth_type" not in opts:
            continue
        extra = loading.get_auth_common_conf_options()
        extra += loading.get_auth_plugin_conf_options(opts["auth_type"][-1])
        entries = data["options"].setdefault(group, {"opts": [], "help": "", "standard_opts": []})["opts"]
        entries += [{"name": o.name, "dest": o.dest} for o in extra]


def strict_authtoken(data: dict, found: dict[str, dict[str, list[str]]]) -> list[str]:  # type: ignore[type-arg]
    known = {n for o in data["options"].get("keystone_authtoken", {}).get("opts", [])
             for n in (o["name"], o.get("dest"))}
    return [f"ERROR: keystone_authtoken/{k} is not a known option"
            for k in found.get("keystone_authtoken", {}) if k not in known]


def oslo(job: dict) -> tuple[int, str]:  # type: ignore[type-arg]
    data = generated(job["namespaces"])
    found = sections(job["file"])
    add_auth_options(data, found)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
        yaml.safe_dump(data, fh)
    done = subprocess.run(["oslo-config-validator", "--fatal-warnings", "--opt-data", fh.name,
                           "--input-file", job["file"]], capture_output=True, text=True)
    extra = strict_authtoken(data, found)
    lines = [ln for ln in (done.stdout + done.stderr).splitlines() if not ln.startswith("INFO:")] + extra
    return (done.returncode or (1 if extra else 0)), "\n".join(lines)


def show_args(init: str) -> list[str]:
    done = subprocess.run([f"/etc/init.d/{init}", "show-args"], capture_output=True, text=True, check=True)
    return done.stdout.split()


def host(job: dict) -> tuple[int, str]:  # type: ignore[type-arg]
    from neutron.conf import common
    from oslo_config import cfg

    args = [a for a in show_args(job["init"]) if a.startswith(("--config-file=", "--config-dir="))]
    conf = cfg.ConfigOpts()
    conf.register_opts(common.core_opts)
    conf(args=args, project="neutron", default_config_files=[], default_config_dirs=[])
    return 0, json.dumps({"host": conf.host, "args": args})


def main() -> None:
    with open(sys.argv[1]) as fh:
        jobs = json.load(fh)
    for job in jobs:
        try:
            if job["kind"] == "oslo":
                rc, out = oslo(job)
            elif job["kind"] == "show-args":
                rc, out = 0, " ".join(show_args(job["init"]))
            elif job["kind"] == "cmd":
                done = subprocess.run(job["argv"], capture_output=True, text=True, timeout=120)
                rc, out = done.returncode, done.stdout + done.stderr
            else:
                rc, out = host(job)
        except Exception as e:  # report, keep going: one broken job must not hide the others
            rc, out = 2, f"{type(e).__name__}: {e}"
        print(json.dumps({"id": job["id"], "rc": rc, "output": out}), flush=True)


if __name__ == "__main__":
    main()
