"""Bundle placement, tested directly with plain inputs."""

from raggio.gcs.bundle_placement import plan

A, B, C = b"a", b"b", b"c"


def test_strict_pack_needs_one_node_for_everything():
    nodes, _ = plan([{"CPU": 1}, {"CPU": 1}], "STRICT_PACK", {A: {"CPU": 1}, B: {"CPU": 2}})
    assert nodes == [B, B]
    nodes, why = plan([{"CPU": 2}, {"CPU": 1}], "STRICT_PACK", {A: {"CPU": 2}, B: {"CPU": 2}})
    assert nodes is None and "STRICT_PACK" in why


def test_pack_prefers_one_node_then_fills_used_nodes_first():
    assert plan([{"CPU": 1}] * 2, "PACK", {A: {"CPU": 4}, B: {"CPU": 4}})[0] in ([A, A], [B, B])
    nodes, _ = plan([{"CPU": 2}] * 3, "PACK", {A: {"CPU": 4}, B: {"CPU": 2}})
    assert sorted(nodes) == [A, A, B]


def test_strict_spread_uses_distinct_nodes_or_says_why_not():
    nodes, _ = plan([{"CPU": 1}] * 3, "STRICT_SPREAD",
                    {A: {"CPU": 4}, B: {"CPU": 1}, C: {"CPU": 1}})
    assert sorted(nodes) == [A, B, C]
    nodes, why = plan([{"CPU": 1}] * 3, "STRICT_SPREAD", {A: {"CPU": 4}, B: {"CPU": 4}})
    assert nodes is None and "3 different nodes" in why


def test_spread_is_best_effort():
    nodes, _ = plan([{"CPU": 1}] * 2, "SPREAD", {A: {"CPU": 4}, B: {"CPU": 4}})
    assert sorted(nodes) == [A, B]
    nodes, _ = plan([{"CPU": 1}] * 3, "SPREAD", {A: {"CPU": 4}, B: {"CPU": 4}})
    assert set(nodes) == {A, B}


def test_missing_resource_is_named():
    nodes, why = plan([{"GPU": 1}], "PACK", {A: {"CPU": 4}})
    assert nodes is None and "GPU" in why
    assert plan([{"CPU": 1}], "PACK", {})[0] is None
