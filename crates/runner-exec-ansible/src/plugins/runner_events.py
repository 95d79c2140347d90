# Shipped inside runner-exec-ansible (include_str!) and written into each run's work directory.
# Streams the playbook's progress to the executor as one JSON object per line over the unix socket
# named by RUNNER_EVENTS_SOCKET, so that the executor never has to parse ansible's human output.
# It also holds the graceful stop (see _install_stop): a callback, not a strategy plugin, because
# ansible-core 2.19 warns about every strategy plugin outside ansible.builtin in the user's output,
# and because a callback works under every strategy.
from __future__ import annotations

DOCUMENTATION = """
    name: runner_events
    type: notification
    short_description: Streams playbook events to the Runner executor
    description:
      - Sends one JSON line per playbook start, play start, task start, host result (per loop
        item too, and per retry of an until loop), play end and playbook end to the unix socket
        named by the RUNNER_EVENTS_SOCKET environment variable.
      - Once the file named by RUNNER_STOP_FILE exists, no further task starts and the playbook
        ends after the task in progress finished on every host.
    requirements:
      - RUNNER_EVENTS_SOCKET set to a listening unix stream socket
"""

import json
import os
import socket

from ansible.executor.play_iterator import PlayIterator
from ansible.executor.task_queue_manager import TaskQueueManager
from ansible.plugins.callback import CallbackBase

try:
    from ansible.playbook.handler import Handler
except ImportError:  # pragma: no cover - every supported ansible-core has it
    Handler = ()

# What ansible's own output shows for a no_log result (ansible.executor.task_result).
CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"
CENSORED_ITEM = "(censored due to no_log)"

# The callback instance of this run (ansible loads it once, in its main process).
_INSTANCE = None


def _stop_requested():
    path = os.environ.get("RUNNER_STOP_FILE")
    return bool(path) and os.path.exists(path)


def _install_stop():
    """The graceful stop. Every strategy asks the play iterator for each host's next task, and
    asks only once the previous task ended on the hosts it waits for; once the stop file exists
    the iterator answers "no task" (not rescue, always or handlers either), so the play ends
    after the task in progress. The task queue manager's run of each play then reports the play's
    end and makes the playbook executor skip the remaining plays."""
    if getattr(PlayIterator, "_runner_stop_installed", False):
        return
    next_task = PlayIterator.get_next_task_for_host

    def get_next_task_for_host(self, host, peek=False):
        if _INSTANCE is not None and (_INSTANCE.stopped or _stop_requested()):
            _INSTANCE.stopped = True
            return self.get_state_for_host(host.name), None
        return next_task(self, host, peek=peek)

    run_play = TaskQueueManager.run

    def run(self, play):
        if _INSTANCE is not None:
            _INSTANCE.tqm = self
        try:
            result = run_play(self, play)
        finally:
            if _INSTANCE is not None:
                # run() copied the iterator's failed hosts into _failed_hosts (any_errors_fatal,
                # max_fail_percentage included); the next play's run clears them.
                _INSTANCE.play_end(set(self._failed_hosts), set(self._unreachable_hosts))
        if _INSTANCE is not None and _INSTANCE.stopped:
            _INSTANCE.stop_reported()
            # Ends this play and skips the plays after it (PlaybookExecutor breaks on this bit).
            return result | self.RUN_FAILED_BREAK_PLAY
        return result

    PlayIterator.get_next_task_for_host = get_next_task_for_host
    TaskQueueManager.run = run
    PlayIterator._runner_stop_installed = True


def _install_no_log_guard():
    """ansible-core 2.19 prints the exception of a failed task (`[ERROR]: Task failed: ...`, with
    the task's own message and its source) even when the task is `no_log` and its result line is
    censored, so a secret in a `no_log` task's message reached the output, the run log included.
    Every callback shows exceptions through CallbackBase._handle_exception (the stdout callback
    too): for a censored result it prints the censoring notice instead of the exception."""
    if getattr(CallbackBase, "_runner_no_log_guard", False):
        return
    handle = CallbackBase._handle_exception

    def _handle_exception(self, result, use_stderr=False):
        current = getattr(self, "_current_task_result", None)
        no_log = getattr(_task(current), "no_log", None) if current is not None else None
        censored = isinstance(result, dict) and "censored" in result
        if censored or (isinstance(no_log, bool) and no_log):
            if isinstance(result, dict) and result.pop("exception", None):
                self._display.error("Task failed: " + CENSORED, wrap_text=False, stderr=use_stderr)
            return
        return handle(self, result, use_stderr=use_stderr)

    CallbackBase._handle_exception = _handle_exception
    CallbackBase._runner_no_log_guard = True


def _result_data(result):
    # ansible-core 2.19 added `result`; older versions only have `_result`.
    data = getattr(result, "result", None)
    if data is None:
        data = getattr(result, "_result", {})
    return data if isinstance(data, dict) else {}


def _task(result):
    # ansible-core 2.19 added `host` and `task`; older versions only have `_host` and `_task`.
    return getattr(result, "task", None) or getattr(result, "_task")


def _host_name(result):
    host = getattr(result, "host", None) or getattr(result, "_host")
    return host.get_name()


def _clean(text):
    # Module output that was not UTF-8 arrives with surrogate escapes; the executor reads UTF-8
    # JSON, so each undecodable byte becomes U+FFFD, as a terminal would show it.
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _text(value):
    if isinstance(value, str):
        return _clean(value)
    return _clean(json.dumps(value, default=str, ensure_ascii=False))


def _censored(result, data):
    # Exactly what ansible hides: a result it censored for a callback, or one of a no_log task.
    no_log = getattr(_task(result), "no_log", None)
    return "censored" in data or data.get("_ansible_no_log") is True or (isinstance(no_log, bool) and no_log)


def _number(value):
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _task_result(result, item=False):
    """What the task returned, as the feed's TaskResult. Never the raw result of a no_log task."""
    data = _result_data(result)
    out = {"changed": bool(data.get("changed"))}
    if isinstance(_task(result), Handler):
        out["handler"] = True
    for key in ("attempts", "retries"):
        if _number(data.get(key)) is not None:
            out[key] = data[key]
    if _censored(result, data):
        out["censored"] = True
        out["msg"] = CENSORED
        if item:
            out["item"] = CENSORED_ITEM
        return out
    for key in ("msg", "stdout", "stderr"):
        if data.get(key) is not None:
            out[key] = _text(data[key])
    if _number(data.get("rc")) is not None:
        out["rc"] = data["rc"]
    if item:
        label = data.get("_ansible_item_label", data.get("item"))
        if label is not None:
            out["item"] = _text(label)
    return out


def _message(result):
    """One line for a failure: the result's msg (else stderr, else reason)."""
    data = _result_data(result)
    if _censored(result, data):
        return CENSORED
    message = data.get("msg") or data.get("stderr") or data.get("reason") or ""
    return _text(message)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "runner_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        global _INSTANCE
        super().__init__(*args, **kwargs)
        self._sock = None
        self.stopped = False
        self.tqm = None
        self._rescued = {}
        path = os.environ.get("RUNNER_EVENTS_SOCKET")
        if path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            self._sock = sock
        _INSTANCE = self
        _install_stop()
        _install_no_log_guard()

    def _emit(self, event, **fields):
        if self._sock is None:
            return
        fields["event"] = event
        line = json.dumps(fields, default=str, ensure_ascii=False) + "\n"
        try:
            # "replace": a lone surrogate that _clean did not see must not lose the whole line.
            self._sock.sendall(line.encode("utf-8", "replace"))
        except OSError:
            # The executor went away (killed run); ansible itself must not fail because of it.
            self._sock = None

    def play_end(self, failed, unreachable):
        self._emit("play_end", failed=sorted(failed), unreachable=sorted(unreachable))

    def stop_reported(self):
        self._emit("stopped")

    def _was_rescued(self, result):
        # The strategy counts a rescued failure in the stats before it calls back.
        stats = getattr(self.tqm, "_stats", None)
        if stats is None:
            return False
        host = _host_name(result)
        count = getattr(stats, "rescued", {}).get(host, 0)
        rescued = count > self._rescued.get(host, 0)
        self._rescued[host] = count
        return rescued

    def _host_event(self, event, result, item=False, marks=None, **fields):
        data = _task_result(result, item=item)
        data.update(marks or {})
        self._emit(event, host=_host_name(result), task=_task(result).get_name(), result=data, **fields)

    def v2_playbook_on_start(self, playbook):
        # The executor names the playbook itself (by its path in the repository).
        self._emit("playbook_start")

    def v2_playbook_on_play_start(self, play):
        self._emit("play_start", name=play.get_name())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._emit("task_start", name=task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self._emit("task_start", name=task.get_name(), handler=True)

    def v2_runner_on_ok(self, result):
        self._host_event("host_ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        marks = {"ignored": bool(ignore_errors), "rescued": self._was_rescued(result)}
        self._host_event("host_failed", result, marks=marks, message=_message(result))

    def v2_runner_on_unreachable(self, result):
        self._host_event("host_unreachable", result, message=_message(result))

    def v2_runner_on_skipped(self, result):
        self._host_event("host_skipped", result)

    def v2_runner_item_on_ok(self, result):
        self._host_event("host_ok", result, item=True)

    def v2_runner_item_on_failed(self, result):
        # One item's failure; the task's own host_failed follows the last item.
        self._host_event("host_failed", result, item=True, message=_message(result), loop_item=True)

    def v2_runner_item_on_skipped(self, result):
        self._host_event("host_skipped", result, item=True)

    def v2_runner_retry(self, result):
        self._host_event("host_retry", result)

    def v2_playbook_on_stats(self, stats):
        hosts = {host: stats.summarize(host) for host in sorted(stats.processed.keys())}
        self._emit("playbook_end", stats=hosts)
