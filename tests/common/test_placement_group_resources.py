"""Ray's names for a placement group's resources: made and read back by one module."""

from raggio.common.placement_group_resources import (bundle_resources, group_resource,
                                                     in_placement_group, is_group_resource,
                                                     placement_group_of, requested_resources,
                                                     resource_name, split_group_resource)

PG_ID = bytes.fromhex("ab12" * 9)


def test_names_read_back_as_made():
    hex_id = PG_ID.hex()
    assert group_resource("CPU", hex_id, 2) == f"CPU_group_2_{hex_id}"
    assert group_resource("CPU", hex_id) == f"CPU_group_{hex_id}"
    assert split_group_resource(group_resource("my_res", hex_id, 2)) == ("my_res", 2, hex_id)
    assert split_group_resource(group_resource("GPU", hex_id)) == ("GPU", None, hex_id)
    assert split_group_resource("CPU") is None
    assert resource_name(f"GPU_group_1_{hex_id}") == "GPU" and resource_name("GPU") == "GPU"
    assert is_group_resource(f"CPU_group_{hex_id}") and not is_group_resource("CPU")


def test_a_reserved_group_and_a_request_in_it_use_the_same_names():
    reserved = bundle_resources(PG_ID, {0: {"CPU": 1.0}, 1: {"CPU": 2.0, "GPU": 1.0}})
    hex_id = PG_ID.hex()
    assert reserved[f"CPU_group_{hex_id}"] == 3.0
    assert reserved[f"CPU_group_1_{hex_id}"] == 2.0
    assert reserved[f"bundle_group_{hex_id}"] == 2000.0
    request = in_placement_group({"CPU": 1.0, "GPU": 0}, PG_ID, 1)
    assert set(request) == {f"CPU_group_1_{hex_id}", f"bundle_group_1_{hex_id}"}
    assert all(reserved[key] >= value for key, value in request.items())
    anywhere = in_placement_group({}, PG_ID, -1)
    assert list(anywhere) == [f"bundle_group_{hex_id}"]  # even an empty request joins the group
    assert placement_group_of(request) == placement_group_of(anywhere) == hex_id
    assert placement_group_of({"CPU": 1.0}) is None
    assert requested_resources(request) == {"CPU": 1.0}
