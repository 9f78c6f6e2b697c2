"""The seed's on-premise cluster file, written for the test hosts (``cluster_file``)."""

import yaml

#: The seed's on-premise cluster file, as its deployment chapter writes it (the addresses and
#: the key are the test hosts').
ONPREM = """\
cluster_name: {name}
provider:
  type: local
  head_ip: {head_ip}
  worker_ips: [{worker_ips}]
auth:
  ssh_user: {user}
  ssh_private_key: {key}
head_node:
  resources:
    CPU: 2
    memory: 4Gi
worker_nodes:
  resources:
    CPU: 2
    memory: 4Gi
head_setup_commands:
  - echo "head setup on $(hostname -I)" > /tmp/setup-ran
worker_setup_commands:
  - echo "worker setup for head $RAY_HEAD_IP" > /tmp/setup-ran
head_start_ray_commands:
  - ray start --head --port=6379
worker_start_ray_commands:
  - ray start --address=$RAY_HEAD_IP:6379
"""


def cluster_file(tmp_path, ssh_hosts, name: str, text: str = ONPREM, workers=None,
                 **changes) -> str:
    """``text`` (a cluster file with {name}, {head_ip}... fields) for the hosts, written to
    ``<tmp_path>/<name>.yaml``: host 0 the head, the others (or ``workers``) its workers."""
    worker_ips = ssh_hosts.ips[1:] if workers is None else workers
    document = yaml.safe_load(text.format(
        name=name, head_ip=ssh_hosts.ips[0], worker_ips=", ".join(worker_ips),
        user=ssh_hosts.user, key=ssh_hosts.key_path))
    document.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return str(path)


