#!/usr/bin/env bash
# Run the microbenchmark against Ray and raggio, then compare them.
#
# Usage: bench/run_vs_ray.sh [--quick] [--filter TEXT]
#   (extra arguments go to both bench/microbenchmark.py runs)
#
# Ray is installed into .venv-ray at the repo root when missing.  Both sides
# run inside the network namespace "raggio-bench", which has only loopback
# up, so that no traffic leaves 127.0.0.0/8.  Needs root (ip netns).
# Results land in bench/results/{ray,raggio}.json.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv-ray"
NETNS=raggio-bench
RESULTS="$REPO_ROOT/bench/results"
RAY_VERSION=2.60.0

ensure_ray_venv() {
    if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import ray" 2>/dev/null; then
        return
    fi
    echo "Installing ray[default]==$RAY_VERSION into $VENV ..."
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "ray[default]==$RAY_VERSION" numpy psutil
}

ensure_netns() {
    if ! ip netns list | awk '{print $1}' | grep -qx "$NETNS"; then
        ip netns add "$NETNS"
    fi
    ip netns exec "$NETNS" ip link set lo up
}

in_netns() {
    ip netns exec "$NETNS" "$@"
}

main() {
    cd "$REPO_ROOT"
    ensure_ray_venv
    ensure_netns
    mkdir -p "$RESULTS"

    local status=0
    echo "=== Ray ==="
    in_netns env RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 \
        "$VENV/bin/python" bench/microbenchmark.py --backend ray \
        --json "$RESULTS/ray.json" "$@" || status=1
    echo "=== raggio ==="
    in_netns env PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" \
        python3 bench/microbenchmark.py --backend raggio \
        --json "$RESULTS/raggio.json" "$@" || status=1

    echo "=== cluster management: Ray ==="
    in_netns env RAY_AUTH_MODE=disabled RAY_USAGE_STATS_ENABLED=0 \
        "$VENV/bin/python" bench/cluster_bench.py --backend ray \
        --json "$RESULTS/ray-cluster.json" || status=1
    echo "=== cluster management: raggio ==="
    in_netns env PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" \
        python3 bench/cluster_bench.py --backend raggio \
        --json "$RESULTS/raggio-cluster.json" || status=1

    echo "=== raggio vs Ray ==="
    python3 bench/compare.py "$RESULTS/ray.json" "$RESULTS/raggio.json"
    echo
    python3 bench/compare.py "$RESULTS/ray-cluster.json" "$RESULTS/raggio-cluster.json"
    return "$status"
}

main "$@"
