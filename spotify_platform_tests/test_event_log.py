"""The instance's event log shared with other processes: the webserver follows a run while it
runs, reads what it recorded, and run workers fork from a process that has written."""

import multiprocessing
import threading

from dagster import AssetKey, AssetMaterialization, DagsterInstance, job, op

from spotify_platform.defs.event_storage import ensure_instance_settings

WAIT = 30


def _instances(tmp_path) -> tuple[DagsterInstance, DagsterInstance]:
    home = str(tmp_path / "home")
    ensure_instance_settings(home)
    return DagsterInstance.from_config(home), DagsterInstance.from_config(home)


def test_a_run_in_progress_reaches_a_watcher_of_its_log_while_it_runs(tmp_path):
    writer, reader = _instances(tmp_path)
    started, watching = threading.Event(), threading.Event()
    run: dict[str, str] = {}

    @op
    def talk(context):
        context.log.info("before the watch")
        run["id"] = context.run_id
        started.set()
        assert watching.wait(WAIT)
        context.log.info("while watched")
        context.log_event(AssetMaterialization("talked"))
        assert heard.wait(WAIT), "the watcher saw nothing of the running run"

    heard = threading.Event()
    messages: list[str] = []

    def seen(entry, _cursor):
        messages.append(entry.user_message)
        if entry.user_message == "while watched":
            heard.set()

    @job
    def talking():
        talk()

    worker = threading.Thread(
        target=lambda: run.setdefault(
            "success", talking.execute_in_process(instance=writer, raise_on_error=False).success
        )
    )
    worker.start()
    assert started.wait(WAIT)
    reader.event_log_storage.watch(run["id"], None, seen)
    watching.set()
    worker.join(WAIT)
    reader.event_log_storage.end_watch(run["id"], seen)
    assert run["success"]
    assert "before the watch" in messages and "while watched" in messages
    # The index, written through a connection the writer keeps open, reads the same elsewhere.
    latest = reader.get_latest_materialization_event(AssetKey("talked"))
    assert latest is not None and latest.run_id == run["id"]
    writer.dispose()
    reader.dispose()


def _report_from_child(home: str, name: str) -> None:
    DagsterInstance.from_config(home).report_runless_asset_event(AssetMaterialization(name))


def _report_in_fork(instance: DagsterInstance, name: str) -> None:
    instance.report_runless_asset_event(AssetMaterialization(name))
    instance.dispose()


def test_a_forked_process_writes_beside_its_parent_and_the_parent_goes_on(tmp_path):
    parent, reader = _instances(tmp_path)
    parent.report_runless_asset_event(AssetMaterialization("before"))
    fork = multiprocessing.get_context("fork")
    for target, args in (
        (_report_in_fork, (parent, "forked")),
        (_report_from_child, (str(tmp_path / "home"), "child")),
    ):
        child = fork.Process(target=target, args=args)
        child.start()
        child.join(WAIT)
        assert child.exitcode == 0
    parent.report_runless_asset_event(AssetMaterialization("after"))
    for name in ("before", "forked", "child", "after"):
        assert parent.get_latest_materialization_event(AssetKey(name)) is not None, name
        assert reader.get_latest_materialization_event(AssetKey(name)) is not None, name
    parent.dispose()
    reader.dispose()
