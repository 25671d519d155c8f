"""Heat API, CloudFormation API and engine on every controller.

The engines are active/active RPC consumers on the `heat` vhost. Stacks' users live in their own
Keystone domain, which deploy creates: domain `heat`, user `heat_domain_admin` (secret
`keystone/heat_domain_admin`) with the admin role on that domain, and the roles `heat_stack_owner`
and `heat_stack_user`. Instances reach the CFN API (metadata, wait conditions) through the VIP.
"""

from __future__ import annotations

from hastack import pki
from hastack.components import openstack as os_
from hastack.components.base import Ctx, File
from hastack.topology.model import Node, Topology

CONF = "/etc/heat/heat.conf"
API_PORT = 8004
CFN_PORT = 8000
UNITS = ("heat-api", "heat-api-cfn", "heat-engine")
STACK_DOMAIN = "heat"
DOMAIN_ADMIN = "heat_domain_admin"
STACK_ROLES = ("heat_stack_owner", "heat_stack_user")

API = os_.Uwsgi(
    unit="heat-api", init_name="heat-api", ini="/etc/heat/heat-api-uwsgi.ini", port=API_PORT,
    lines=os_.debian_uwsgi("heat-api", "heat", ("wsgi-file", "/usr/bin/heat-wsgi-api"),
                           "/var/log/heat/heat-api.log"),
)
CFN = os_.Uwsgi(
    unit="heat-api-cfn", init_name="heat-api-cfn", ini="/etc/heat/heat-api-cfn-uwsgi.ini", port=CFN_PORT,
    lines=os_.debian_uwsgi("heat-api-cfn", "heat", ("wsgi-file", "/usr/bin/heat-wsgi-api-cfn"),
                           "/var/log/heat/heat-api-cfn.log"),
)


def conf(ctx: Ctx) -> os_.Sections:
    topo = ctx.topo
    # [trustee] takes the auth plugin's options only (no session options such as cafile): heat's own
    # keystone client, configured in [clients_keystone], makes the calls.
    trustee = {k: v for k, v in os_.password_auth(ctx, "heat").items()
               if k not in ("project_name", "project_domain_name", "cafile")}
    ca = {"ca_file": pki.CA_PATH} if topo.network.tls else {}
    return os_.merge(
        {"DEFAULT": {
            "heat_metadata_server_url": os_.url(ctx, CFN_PORT),
            "heat_waitcondition_server_url": os_.url(ctx, CFN_PORT, "/v1/waitcondition"),
            "stack_domain_admin": DOMAIN_ADMIN,
            "stack_domain_admin_password": ctx.secrets.password(f"keystone/{DOMAIN_ADMIN}"),
            "stack_user_domain_name": STACK_DOMAIN,
            "num_engine_workers": topo.openstack.api_workers,
            "region_name_for_services": topo.openstack.region,
        }},
        os_.messaging(ctx, "heat"),
        os_.oslo_cache(ctx),
        {"clients": {"endpoint_type": "internalURL", **ca}},
        {"clients_keystone": {"auth_uri": os_.auth_url(ctx), **ca}},
        os_.database(ctx, "heat", "heat"),
        {"ec2authtoken": {"auth_uri": os_.auth_url(ctx) + "/v3"}},
        os_.keystone_authtoken(ctx, "heat"),
        {"trustee": trustee},
    )


class Heat:
    name = "heat"

    def applies(self, topo: Topology, node: Node) -> bool:
        return topo.runs("heat") and node.has("controller")

    def packages(self, topo: Topology, node: Node) -> list[str]:
        return list(UNITS)

    def units(self, topo: Topology, node: Node) -> list[str]:
        return list(UNITS)

    def files(self, ctx: Ctx, node: Node) -> list[File]:
        workers = ctx.topo.openstack.api_workers
        return [os_.config_file(CONF, conf(ctx), "heat", UNITS),
                *os_.uwsgi_files(API, node, workers), *os_.uwsgi_files(CFN, node, workers),
                *os_.daemon_dropins(UNITS, API, CFN)]


COMPONENT = Heat()
