# Shipped inside runner-exec-ansible (include_str!) and written into each run's work directory.
# Streams the playbook's progress to the executor as one JSON object per line over the unix socket
# named by RUNNER_EVENTS_SOCKET, so that the executor never has to parse ansible's human output.
from __future__ import annotations

DOCUMENTATION = """
    name: runner_events
    type: notification
    short_description: Streams playbook events to the Runner executor
    description:
      - Sends one JSON line per playbook start, play start, task start, host result and playbook end
        to the unix socket named by the RUNNER_EVENTS_SOCKET environment variable.
    requirements:
      - RUNNER_EVENTS_SOCKET set to a listening unix stream socket
"""

import json
import os
import socket

from ansible.plugins.callback import CallbackBase

# Longest failure message sent per host result; the full text stays in the execution's log.
MAX_MESSAGE = 2000


def _result_data(result):
    # ansible-core 2.19 added `result`; older versions only have `_result`.
    data = getattr(result, "result", None)
    if data is None:
        data = getattr(result, "_result", {})
    return data if isinstance(data, dict) else {}


def _host_name(result):
    # ansible-core 2.19 added `host` and `task`; older versions only have `_host` and `_task`.
    host = getattr(result, "host", None) or getattr(result, "_host")
    return host.get_name()


def _task_name(result):
    task = getattr(result, "task", None) or getattr(result, "_task")
    return task.get_name()


def _message(result):
    data = _result_data(result)
    message = data.get("msg") or data.get("stderr") or data.get("reason") or ""
    if not isinstance(message, str):
        message = json.dumps(message, default=str)
    return message[:MAX_MESSAGE]


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "runner_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._sock = None
        path = os.environ.get("RUNNER_EVENTS_SOCKET")
        if path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            self._sock = sock

    def _emit(self, event, **fields):
        if self._sock is None:
            return
        fields["event"] = event
        line = json.dumps(fields, default=str) + "\n"
        try:
            self._sock.sendall(line.encode("utf-8"))
        except OSError:
            # The executor went away (killed run); ansible itself must not fail because of it.
            self._sock = None

    # Called by the runner_linear strategy.
    def runner_play_end(self, failed, unreachable):
        self._emit("play_end", failed=sorted(failed), unreachable=sorted(unreachable))

    def runner_stopped(self):
        self._emit("stopped")

    def v2_playbook_on_start(self, playbook):
        self._emit("playbook_start", playbook=getattr(playbook, "_file_name", None))

    def v2_playbook_on_play_start(self, play):
        # A play that names the linear strategy explicitly still gets the stoppable one.
        if getattr(play, "strategy", None) in ("linear", "ansible.builtin.linear"):
            play.strategy = "runner_linear"
        self._emit("play_start", name=play.get_name(), strategy=getattr(play, "strategy", None))

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._emit("task_start", name=task.get_name())

    def v2_playbook_on_handler_task_start(self, task):
        self._emit("task_start", name=task.get_name(), handler=True)

    def v2_runner_on_ok(self, result):
        self._emit("host_ok", host=_host_name(result), task=_task_name(result),
                   changed=bool(_result_data(result).get("changed")))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._emit("host_failed", host=_host_name(result), task=_task_name(result),
                   message=_message(result), ignored=bool(ignore_errors))

    def v2_runner_on_unreachable(self, result):
        self._emit("host_unreachable", host=_host_name(result), task=_task_name(result),
                   message=_message(result))

    def v2_runner_on_skipped(self, result):
        self._emit("host_skipped", host=_host_name(result), task=_task_name(result))

    def v2_playbook_on_stats(self, stats):
        hosts = {host: stats.summarize(host) for host in sorted(stats.processed.keys())}
        self._emit("playbook_end", stats=hosts)
