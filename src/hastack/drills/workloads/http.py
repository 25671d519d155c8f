"""The HTTP-side workloads: the VIP probe (TCP to HAProxy), Keystone tokens, the Neutron network list."""

from __future__ import annotations

import socket
import threading
from typing import Any

from hastack.components import keystone
from hastack.drills.samples import Recorder
from hastack.drills.workloads.base import Credentials, Endpoints, paced

# -- VIP probe -------------------------------------------------------------------------------------------

class VipProbe:
    """TCP connect to HAProxy on the VIP: is the address held, and is HAProxy answering there?"""

    name = "vip"

    def __init__(self, ep: Endpoints, run_id: str, rate: float = 50.0, timeout: float = 0.25,
                 workers: int = 8) -> None:
        self.ep, self.run_id, self.rate, self.timeout, self.workers = ep, run_id, rate, timeout, workers

    def prepare(self) -> None:
        pass

    def op(self, _id: str) -> str | None:
        with socket.create_connection((self.ep.vip, self.ep.vip_probe_port), timeout=self.timeout):
            return None

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        paced(rec, stop, duration, stream="vip", rate=self.rate, workers=self.workers, op=self.op,
              ids=lambda i: f"{self.run_id}-v{i}")

    def verify(self, rec: Recorder) -> None:
        pass


# -- Keystone --------------------------------------------------------------------------------------------

class KeystoneTokens:
    """Issue project-scoped tokens through the VIP (reads Keystone's database through the VIP too).

    Like a long-running service, the client logs in with its password once and then asks for each
    new token with the token it holds (the `token` auth method), logging in again only when that is
    refused. A password login costs Keystone a bcrypt hash (~0.7 s of CPU here): ten of them a
    second would saturate this 2-core machine by themselves and measure the CPU, not the failover.
    Fernet tokens are checked with the keys every controller shares, so any controller serves it."""

    name = "keystone"

    def __init__(self, ep: Endpoints, creds: Credentials, run_id: str, rate: float = 10.0,
                 timeout: float = 2.0, workers: int = 4) -> None:
        self.ep, self.run_id, self.rate, self.workers = ep, run_id, rate, workers
        self.url = ep.url(ep.keystone_port, "/v3/auth/tokens")
        self.creds, self.body = creds, token_request(creds)
        self.held: str | None = None
        self.client = ep.http_client(timeout, workers)

    def prepare(self) -> None:
        self.held = self.login()

    def login(self) -> str:
        """A token from a password login (the one bcrypt check a long-running client pays)."""
        return self._issue(self.body)

    def _issue(self, body: dict[str, Any]) -> str:
        resp = self.client.post(self.url, json=body)
        token = str(resp.headers.get("X-Subject-Token", ""))
        if resp.status_code != 201 or not token:
            raise RuntimeError(f"HTTP {resp.status_code}")
        return token

    def op(self, _id: str) -> str | None:
        held = self.held
        if held is None:  # the last login was refused: log in again, as a real client would
            self.held = held = self.login()
        try:
            self._issue(keystone.token_auth(held, self.creds.keystone_project, self.creds.keystone_domain))
        except RuntimeError as exc:
            if str(exc) == "HTTP 401":
                self.held = None
            raise
        return None

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        try:
            paced(rec, stop, duration, stream="keystone", rate=self.rate, workers=self.workers, op=self.op,
                  ids=lambda i: f"{self.run_id}-k{i}")
        finally:
            self.client.close()

    def verify(self, rec: Recorder) -> None:
        pass


class NeutronNetworks:
    """List networks through the VIP (Neutron's API: keystonemiddleware checks the token against
    Keystone and memcached, then a read of Neutron's database through the VIP), as a dashboard or a
    CLI user would. The token comes from one password login and is renewed only when refused."""

    name = "networks"

    def __init__(self, ep: Endpoints, creds: Credentials, run_id: str, rate: float = 5.0,
                 timeout: float = 2.0, workers: int = 3) -> None:
        assert ep.neutron_port is not None
        self.run_id, self.rate, self.workers = run_id, rate, workers
        self.url = ep.url(ep.neutron_port, "/v2.0/networks")
        self.keystone = KeystoneTokens(ep, creds, run_id, timeout=timeout, workers=1)
        self.client = ep.http_client(timeout, workers)
        self.token: str | None = None

    def prepare(self) -> None:
        self.token = self.keystone.login()

    def op(self, _id: str) -> str | None:
        token = self.token
        if token is None:
            self.token = token = self.keystone.login()
        resp = self.client.get(self.url, headers={"X-Auth-Token": token})
        if resp.status_code == 401:
            self.token = None
        if resp.status_code != 200 or "networks" not in resp.json():
            raise RuntimeError(f"HTTP {resp.status_code}")
        return None

    def run(self, rec: Recorder, stop: threading.Event, duration: float) -> None:
        try:
            paced(rec, stop, duration, stream="networks", rate=self.rate, workers=self.workers, op=self.op,
                  ids=lambda i: f"{self.run_id}-n{i}")
        finally:
            self.client.close()
            self.keystone.client.close()

    def verify(self, rec: Recorder) -> None:
        pass


def token_request(c: Credentials) -> dict[str, Any]:
    return keystone.password_auth(c.keystone_user, c.keystone_password, c.keystone_project, c.keystone_domain)
