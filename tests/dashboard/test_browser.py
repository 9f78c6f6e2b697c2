"""The dashboard's web UI in a real browser: headless Chromium driven through Selenium
(``browsing.py``).

One browser and one two-node cluster (``dashboard_cluster``, from conftest.py) serve the
module; a driver in this process makes actors and tasks and the tests watch them appear
on the pages without reloading them.
"""

from __future__ import annotations

import os
import re
import signal

import psutil
import pytest
from browsing import (Browser, By, browser, browser_for, chromium,  # noqa: F401 (fixtures)
                      fresh_browser, logged_in, needs_browser)

import raggio as ray
from raggio.util.scheduling_strategies import NodeAffinitySchedulingStrategy

pytestmark = needs_browser


# -- the tests --

def test_login_flow_page_redirect_wrong_token_link_and_logout(fresh_browser, dashboard_cluster):
    b = fresh_browser
    b.web.get(f"{b.url}/#/actors")
    b.wait_for(lambda: "/login?next=" in b.web.current_url, "the redirect to the login page")
    b.expect_console("401")  # the wrong token's answer
    help_text = b.web.find_element(By.CSS_SELECTOR, "details.help").get_attribute("textContent")
    assert "session_latest/token" in help_text and "raggio dashboard" in help_text
    field = b.web.find_element(By.ID, "token")
    field.send_keys("not-the-token")
    b.web.find_element(By.ID, "submit").click()
    error = b.wait_for(lambda: b.web.find_element(By.ID, "error").is_displayed()
                       and b.web.find_element(By.ID, "error"), "the error to show")
    assert "not this cluster's token" in error.text

    # The link `raggio dashboard` prints: logged in, the token gone from the address bar.
    b.web.get(f"{b.url}/login?next=%2F#token={dashboard_cluster.token}")
    b.wait_for(lambda: "/login" not in b.web.current_url, "the login to finish")
    assert dashboard_cluster.token not in b.web.current_url
    b.wait_text("Overview", "h1")

    b.web.find_element(By.ID, "logout").click()
    b.wait_for(lambda: b.web.current_url.rstrip("/").endswith("/login"), "the logout")
    b.web.get(f"{b.url}/")
    b.wait_for(lambda: "/login?next=" in b.web.current_url, "the login page again")
    b.log_in(dashboard_cluster.token)  # for the tests after this one


def test_login_goes_on_only_to_a_page_of_this_dashboard(fresh_browser, dashboard_cluster):
    b = fresh_browser

    def log_in_and_go_on(next_page: str) -> None:
        # location.replace: the page left does not stay in the back-forward cache, where it
        # would keep its live stream open (Chrome's six connections to a host run out).
        b.web.execute_script("window.__left = true; location.replace(arguments[0])",
                             f"{b.url}/login?next={next_page}#token={dashboard_cluster.token}")
        b.wait_for(lambda: b.web.execute_script("return window.__left !== true")
                   and "/login" not in b.web.current_url, "the login to finish")

    # Each is another site to a browser (`/\host` and `/<tab>/host` are `//host`). Another
    # port of this machine stands for it: the test reaches nothing beyond it.
    elsewhere = "127.0.0.1:9"
    for next_page in (f"/%5C{elsewhere}/", f"/%09/{elsewhere}/", f"//{elsewhere}/",
                      f"http://{elsewhere}/", "javascript:alert(1)"):
        log_in_and_go_on(next_page)
        assert b.web.current_url.startswith(b.url + "/"), (next_page, b.web.current_url)
        b.wait_text("Overview", "h1")
    # A page of its own, with its query and route, is where the login goes on to.
    log_in_and_go_on("%2F%3Fa%3D1%23%2Fnodes")
    assert b.web.current_url == f"{b.url}/?a=1#/nodes"


def test_a_page_whose_session_ends_goes_to_the_login_page(fresh_browser, dashboard_cluster):
    b = fresh_browser
    b.log_in(dashboard_cluster.token)
    # A page that asks for nothing itself: only its live stream can notice.
    b.open("no-such-page")
    b.wait_for(lambda: b.web.find_element(By.ID, "live").text == "Live", "the live stream")
    b.web.delete_all_cookies()  # the session ends (it expires, or a logout in another tab)
    b.expect_console("401")
    b.expect_console("ERR_")  # the stream's connection, cut
    dashboard = [p for p in psutil.Process(dashboard_cluster.head.pid).children()
                 if "raggio.dashboard" in p.cmdline()]
    assert len(dashboard) == 1
    dashboard[0].kill()  # its head starts it again; the stream reconnects, and is refused
    b.wait_for(lambda: "/login?next=" in b.web.current_url, "the login page")
    assert b.web.current_url == f"{b.url}/login?next=%2F%23%2Fno-such-page"
    b.web.find_element(By.ID, "token").send_keys(dashboard_cluster.token)
    b.web.find_element(By.ID, "submit").click()  # logged in again: back where it was
    b.wait_for(lambda: b.web.current_url == f"{b.url}/#/no-such-page", "the page again")


def test_many_page_loads_in_a_row_all_load(browser):
    """Pages left behind sit in the browser's back/forward cache; their live streams must
    not keep the six connections a browser allows a host, or the next load would hang."""
    for visit in range(10):
        browser.web.get(f"{browser.url}/?visit={visit}#/overview")
        browser.wait_text("Tasks by state")
    browser.web.back()  # a page back from the cache opens its stream again
    browser.wait_text("Tasks by state")
    browser.wait_for(lambda: "Live" in browser.text("nav, aside, body"), "the live dot")


def test_nodes_page_shows_every_node_with_its_usage(browser, dashboard_cluster):
    browser.open("nodes")
    for node_id in dashboard_cluster.node_ids:
        browser.wait_row_text(node_id, "ALIVE")
    head = browser.row(dashboard_cluster.node_ids[0])
    assert "head" in head.text and "/ 2" in head.text  # of its 2 CPUs
    # A node's page: its resources, workers and log files (asked of that node).
    browser.web.find_element(
        By.CSS_SELECTOR, f'a[href="#/nodes/{dashboard_cluster.node_ids[1]}"]').click()
    browser.wait_text("Resources in use")
    browser.wait_text("Log files")
    assert "Workers (" in browser.text()


@ray.remote(num_cpus=0)
class Greeter:
    def greet(self, word):
        print(f"greeting {word}")
        return word


def test_actor_appears_then_turns_dead_without_a_reload(browser, driver):
    browser.open("actors")
    actor = Greeter.options(name="greeter-1").remote()
    ray.get(actor.greet.remote("hello"))
    actor_id = actor._actor_id.hex()
    browser.wait_row_text(actor_id, "ALIVE")
    assert "Greeter" in browser.row(actor_id).text

    ray.kill(actor)
    browser.wait_row_text(actor_id, "DEAD")
    assert not browser.reloaded()

    # Its page: its calls and its worker's output.
    browser.go(f"actors/{actor_id}")
    browser.wait_text("Greeter.greet")
    browser.wait_text("greeting hello", ".log-view")


def test_overview_counts_change_without_a_reload(browser, driver):
    browser.open("overview")
    browser.wait_text("Healthy")
    before = browser.text(".stat:nth-child(3) .value")
    actors = [Greeter.remote() for _ in range(2)]
    ray.get([a.greet.remote("x") for a in actors])
    browser.wait_for(lambda: browser.text(".stat:nth-child(3) .value") != before,
                     "the Actors count to change")
    assert not browser.reloaded()
    for a in actors:
        ray.kill(a)


@ray.remote(num_cpus=64)
def too_big():
    return 1


@ray.remote(max_retries=0)
def fails():
    raise ValueError("this task fails on purpose")


def test_tasks_page_shows_states_pending_reasons_and_errors(browser, driver):
    browser.open("tasks")
    waiting = too_big.remote()
    failed = fails.remote()
    with pytest.raises(ray.exceptions.RayTaskError):
        ray.get(failed)
    waiting_key = f"{waiting.task_id().hex()}:0"
    browser.wait_row_text(waiting_key, "PENDING_NODE_ASSIGNMENT")
    assert "infeasible" in browser.row(waiting_key).text
    failed_key = f"{failed.task_id().hex()}:0"
    browser.wait_row_text(failed_key, "FAILED")
    assert "this task fails on purpose" in browser.row(failed_key).text
    # A task's page: each attempt with its state, function, worker and error.
    browser.go(f"tasks/{failed.task_id().hex()}")
    browser.wait_text("Attempt 0")
    browser.wait_text("this task fails on purpose")
    shown = browser.text()
    assert "FAILED" in shown and "Function" in shown and "pid " in shown

    browser.go("tasks?state=PENDING_NODE_ASSIGNMENT")
    browser.wait_for(lambda: browser.row(failed_key) is None, "the filter to apply")
    assert browser.row(waiting_key) is not None
    ray.cancel(waiting)  # it ends (FAILED, cancelled): it leaves the filtered page by itself
    browser.wait_for(lambda: browser.row(waiting_key) is None, "the cancelled task to go")
    assert not browser.reloaded()


def test_a_task_s_worker_log_lines_appear_and_follow_in_logs(browser, driver, dashboard_cluster):
    node_id = dashboard_cluster.node_ids[1]  # not the head: the logs come from that node

    @ray.remote(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, False))
    def say(word):
        print(f"the worker says {word}")
        return os.getpid()

    pid = ray.get(say.remote("first"))
    browser.open(f"logs?node_id={node_id}")
    link = browser.wait_for(lambda: browser.web.find_element(
        By.CSS_SELECTOR, f'.file-list a[title$="-{pid}.out"]'), "the worker's file in the list")
    link.click()
    browser.wait_text("the worker says first", ".log-view")
    assert browser.text(".log-head .button.on") == "Following"
    ray.get(say.remote("second"))  # pools reuse the worker: the same file grows
    browser.wait_text("the worker says second", ".log-view")
    assert not browser.reloaded()


@ray.remote
def shout(word):
    print(f"job output {word}")


def test_jobs_page_lists_the_driver_s_job_and_its_workers_output(browser, driver):
    browser.open("jobs")
    job_id = ray.get_runtime_context().get_job_id()
    browser.wait_row_text(job_id, "RUNNING")
    ray.get(shout.remote("one"))
    browser.go(f"jobs/{job_id}")
    browser.wait_text(f"Job {job_id}", "h1")
    browser.wait_text("job output one", ".log-view")
    ray.get(shout.remote("two"))  # followed: it comes without a reload
    browser.wait_text("job output two", ".log-view")
    assert not browser.reloaded()


def test_jobs_page_shows_a_submitted_job_its_status_message_and_log(browser, dashboard_cluster):
    from raggio.job_submission import JobSubmissionClient
    client = JobSubmissionClient(dashboard_cluster.url,
                                 headers={"Authorization": f"Bearer {dashboard_cluster.token}"})
    browser.open("jobs")
    job = client.submit_job(entrypoint="echo submitted output; sleep 1; exit 3")
    browser.wait_row_text(job, "RUNNING")  # the page follows it without a reload
    browser.wait_row_text(job, "FAILED")
    assert "failed with exit code 3" in browser.row(job).text
    browser.go(f"jobs/{job}")
    browser.wait_text(f"Job {job}", "h1")
    browser.wait_text("submitted output", ".log-view")
    assert "SUBMISSION" in browser.text() and "Exit code" in browser.text()
    assert not browser.reloaded()


def test_cluster_page_shows_a_pending_group_until_it_is_removed(browser, driver):
    from raggio.util.placement_group import placement_group, remove_placement_group
    group = placement_group([{"CPU": 64}])
    browser.open("cluster")
    browser.wait_text("PENDING")
    assert "64 CPU" in browser.text()
    assert "This cluster has no autoscaler" in browser.text()  # started by hand
    remove_placement_group(group)
    browser.wait_text("REMOVED")


@pytest.fixture
def own_browser(request, chromium, own_dashboard_cluster):
    """The module's browser logged in to a cluster of its own (this test stops its head)."""
    Browser(chromium, own_dashboard_cluster.url).log_in(own_dashboard_cluster.token)
    yield from browser_for(request, chromium, own_dashboard_cluster.url)


def test_a_control_store_that_does_not_answer_shows_the_banner_until_it_is_back(
        own_browser, own_dashboard_cluster):
    b = own_browser
    b.open("nodes")
    b.wait_text("ALIVE")
    banner = b.web.find_element(By.ID, "banner")
    assert not banner.is_displayed()
    b.expect_console("503")  # the pages' requests while it is away
    head = own_dashboard_cluster.head
    head.send_signal(signal.SIGSTOP)  # the control store stops answering; the dashboard runs
    try:
        b.wait_for(banner.is_displayed, "the banner")
        assert "does not answer" in banner.text
    finally:
        head.send_signal(signal.SIGCONT)
    b.wait_for(lambda: not banner.is_displayed(), "the banner to go away")
    b.wait_text("ALIVE")
    assert not b.reloaded()


@pytest.fixture
def autoscaled_browser(request, chromium, tmp_path):
    """The module's browser logged in to a head of its own that runs an autoscaler, whose
    one worker type never launches (``fail_to_start``: no node process to clean up)."""
    import yaml

    from raggio.config import get_config
    from raggio.launch import wait_ready
    from raggio.node_spec import NodeSpec

    config = tmp_path / "autoscaling.yaml"
    config.write_text(yaml.safe_dump({
        "cluster_name": "paged", "max_workers": 1, "provider": {"type": "fake_multinode"},
        "available_node_types": {
            "head": {"resources": {"CPU": 1}, "node_config": {}, "max_workers": 0},
            "broken": {"resources": {"CPU": 2}, "node_config": {"fail_to_start": True},
                       "min_workers": 1, "max_workers": 1}},
        "head_node_type": "head", "head_start_ray_commands": [],
        "worker_start_ray_commands": []}))
    head = NodeSpec(head=True, port=0, include_dashboard=True, dashboard_port=0, tied=True,
                    num_cpus=1, object_store_memory=100 * 1024**2, temp_dir=str(tmp_path),
                    autoscaling_config=str(config),
                    env={"RAGGIO_AUTOSCALER_UPDATE_INTERVAL_S": "1"}).start_process()
    try:
        ready = wait_ready(head, get_config().head_start_timeout_s, "raggio head")
        Browser(chromium, ready["dashboard_url"]).log_in(ready["token"])
        yield from browser_for(request, chromium, ready["dashboard_url"])
    finally:
        head.stdin.close()
        head.wait(timeout=30)


def test_cluster_page_shows_the_autoscalers_failed_launches_and_why_it_waits(
        autoscaled_browser):
    b = autoscaled_browser
    b.open("cluster")
    b.wait_text("Recent failed launches")
    b.wait_text("not launching broken")  # its back-off, in the autoscaler's words
    text = b.text()
    assert "Cluster paged" in text and "fail_to_start" in text
    assert re.search(r"broken\s+0\s+0\s+1–1", text), text  # every type, with its limits
