"""``amibake local serve``: run the embedded local cloud standalone."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from amibake.core.local.latency import DEFAULT_PROFILE, PROFILES


def register(subparsers: Any) -> None:
    local = subparsers.add_parser("local", help="the embedded local cloud (no AWS account needed)")
    local_sub = local.add_subparsers(dest="local_command", metavar="SUBCOMMAND", required=True)
    serve = local_sub.add_parser(
        "serve",
        help="run the local cloud until Ctrl-C",
        description="Serve the local cloud's EC2 API on 127.0.0.1 and print how to use it.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to listen on")
    serve.add_argument(
        "--port", type=int, default=0, help="HTTP port of the EC2 endpoint (default: a free one)"
    )
    serve.add_argument(
        "--ssh-port", type=int, default=2222, help="SSH port of every instance (default: 2222)"
    )
    serve.add_argument(
        "--latency",
        choices=sorted(PROFILES),
        default=DEFAULT_PROFILE,
        help="how long state transitions take (default: %(default)s)",
    )
    serve.add_argument(
        "--data-dir", type=Path, default=None, help="where instances and image contents live"
    )
    serve.add_argument(
        "--addressing",
        choices=("auto", "address", "port"),
        default="auto",
        help="address: each instance its own 127.N.x.y on --ssh-port; port: all on 127.0.0.1, "
        "each instance its own SSH port (tag amibake:local:ssh-port); auto: address when the OS "
        "allows it (default)",
    )
    serve.add_argument("--faults", type=Path, default=None, help="fault plan (TOML or JSON)")
    serve.add_argument(
        "--consistency",
        choices=("strong", "eventual"),
        default=None,
        help="eventual: a resource just created is not found for a moment by the calls naming "
        "it (InvalidInstanceID.NotFound ...), as on AWS (default: the latency profile's; "
        "eventual for realistic)",
    )
    serve.add_argument(
        "--no-isolation",
        action="store_true",
        help="run instance commands as plain child processes even if bubblewrap is present",
    )
    serve.add_argument(
        "--no-overlay",
        action="store_true",
        help="keep the plain sandbox (home and /opt) even where instances can have their own "
        "overlay root filesystem",
    )
    serve.add_argument(
        "--instance-network",
        action="store_true",
        help="instances share this machine's network (apt reaches its mirrors); default: off, "
        "instances have no network",
    )
    serve.add_argument(
        "--no-default-vpc",
        action="store_true",
        help="no region has a default VPC, as in accounts that deleted it (builds must name "
        "a subnet_id or subnet_filter)",
    )
    serve.add_argument(
        "--enforce-security-groups",
        action="store_true",
        help="instances refuse SSH from sources their security groups do not admit, as on AWS",
    )
    serve.set_defaults(handler=serve_command)


def banner(cloud: Any) -> str:
    latency = cloud.latency
    if cloud.per_instance_addresses:
        from amibake.core.local.cloud import instance_network

        block = instance_network()
        ssh = f"port {cloud.ssh_port} on each instance's own address (in {block})"
    else:
        ssh = (
            "127.0.0.1 only here: each instance gets its own port, published in its "
            "tag 'amibake:local:ssh-port'"
        )
    if getattr(cloud, "overlay_mode", False):
        sandbox = cloud.instance_mode
    elif cloud.isolated:
        sandbox = (
            "bubblewrap (commands isolated: read-only host, private home and /tmp, no network)"
        )
    else:
        sandbox = (
            "WARNING: bubblewrap not found, commands on instances are NOT isolated "
            "(plain child processes in the instance directory); "
            "install it: apt-get install bubblewrap"
        )
    env = cloud.client_env()
    lines = [
        "amibake local cloud is ready",
        f"  endpoint   {cloud.endpoint_url}",
        f"  latency    {latency.name} (boot {latency.boot:g}s, ssh {latency.ssh_ready:g}s, "
        f"stop {latency.stop:g}s, image {latency.image:g}s, terminate {latency.terminate:g}s)",
        f"  consistency {latency.consistency.mode}"
        + (
            " (new resources are not found for a moment, as on AWS)"
            if latency.consistency.eventual
            else ""
        ),
        f"  ssh        {ssh}",
        *(
            ["  network    no default VPC in any region (set subnet_id or subnet_filter)"]
            if not getattr(cloud, "default_vpc", True)
            else []
        ),
        *(
            ["  groups     security groups enforced on SSH"]
            if getattr(cloud, "enforce_security_groups", False)
            else []
        ),
        f"  sandbox    {sandbox}",
        *(
            [f"  overlay    not available: {cloud.overlay_reason} (instances get the sandbox)"]
            if not getattr(cloud, "overlay_mode", True) and getattr(cloud, "overlay_reason", None)
            else []
        ),
        f"  data       {cloud.data_dir}",
        "",
        "Use it from another shell (AWS CLI, boto3, amibake):",
        f"  export AWS_ENDPOINT_URL={env['AWS_ENDPOINT_URL']}",
        f"  export AWS_ACCESS_KEY_ID={env['AWS_ACCESS_KEY_ID']} "
        f"AWS_SECRET_ACCESS_KEY={env['AWS_SECRET_ACCESS_KEY']} "
        f"AWS_DEFAULT_REGION={env['AWS_DEFAULT_REGION']}",
        "  aws ec2 describe-images --owners 099720109477 \\",
        "      --filters 'Name=name,Values=ubuntu/images/hvm-ssd/ubuntu-focal-20.04-*'",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def serve_command(args: argparse.Namespace) -> int:
    from amibake.core.local.cloud import LocalCloud
    from amibake.core.local.faults import FaultPlan
    from amibake.core.local.latency import get_profile

    plan = FaultPlan.load(args.faults) if args.faults else None
    latency = get_profile(args.latency)
    if getattr(args, "consistency", None):
        latency = latency.with_consistency(args.consistency)
    cloud = LocalCloud(
        host=args.host,
        port=args.port,
        ssh_port=args.ssh_port,
        latency=latency,
        data_dir=args.data_dir,
        isolate=False if args.no_isolation else None,
        faults=plan,
        addressing=args.addressing,
        overlay=False if getattr(args, "no_overlay", False) else None,
        instance_network=getattr(args, "instance_network", False),
        default_vpc=not getattr(args, "no_default_vpc", False),
        enforce_security_groups=getattr(args, "enforce_security_groups", False),
    )
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    cloud.start()
    try:
        print(banner(cloud), flush=True)
        while not stop.wait(0.5):
            pass
        print("stopping the local cloud...", file=sys.stderr, flush=True)
    finally:
        cloud.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
